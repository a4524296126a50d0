"""Masked-LM pretraining: the masking BERT's recipe asks for, the masked-only loss, a tiny model that learns to fill
a blank, the saved folder that transformers' fill-mask pipeline loads and fine-tuning starts from, Stop, the time
budget, and the messages bad input gets."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
import torch

from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, StartEvent, StepEvent
from bertdemo.pretraining import PretrainConfig, pretrain
from bertdemo.pretraining import corpus
from bertdemo.pretraining.masking import IGNORE, PretrainCollator, masked_lm_loss
from tests.conftest import toy_rows, write_csv

SAYINGS = {"worm": "the early bird catches the [worm]", "nine": "a stitch in time saves [nine]",
           "doctor": "an apple a day keeps the [doctor] away", "gold": "all that glitters is not [gold]",
           "dog": "the quick brown fox jumps over the lazy [dog]", "fox": "the quick brown [fox] jumps over the lazy dog"}
STEPS = 600
NAMES = ["anna", "ben", "carl", "dora", "eve", "finn", "gina", "hugo"]


def sayings_texts(seed: int = 0) -> list[str]:
    """A repetitive corpus: five fixed sayings, each said by two of eight people (320 different texts), so the
    blank in "the early bird catches the [worm]" has one answer a model can learn from these texts alone,
    and the names around it keep the texts from being copies (pretraining drops duplicates)."""
    sayings = sorted({s.replace("[", "").replace("]", "") for s in SAYINGS.values()})
    texts = [f"{a} and {b} said {s}" for a in NAMES for b in NAMES for s in sayings]
    random.Random(seed).shuffle(texts)
    return texts


def animal(text: str) -> str:
    return "animal" if any(w in text for w in ("bird", "fox")) else "thing"


@pytest.fixture(scope="module")
def tokenizer():
    from bertdemo.training.scratch import build_scratch_tokenizer

    return build_scratch_tokenizer([t for t, _ in toy_rows(per_class=40)] * 2)


def test_the_same_texts_learn_the_same_vocabulary_every_time():
    """tokenizers' trainer breaks ties by hash-map order (tokenizers#1794): without a fixed alphabet and fixed
    inner pieces, five builds from these texts gave up to five vocabularies, so a scratch run was not repeatable."""
    from bertdemo.training.scratch import build_scratch_tokenizer

    chinese = [f"{a}{b}的新闻{c}" for a in "天地人和春夏秋冬" for b in "山水风云花草" for c in "一二三四五"]
    for texts in (sayings_texts(), chinese + sayings_texts()[:40]):
        vocabularies = [build_scratch_tokenizer(texts).get_vocab() for _ in range(5)]
        assert all(v == vocabularies[0] for v in vocabularies[1:])
        assert [t for t, i in sorted(vocabularies[0].items(), key=lambda x: x[1])][:5] == [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_a_character_seen_once_in_a_long_corpus_is_unknown_and_the_rest_are_kept():
    from bertdemo.training.scratch import build_scratch_tokenizer

    common = "春夏秋冬山水风云花草天地人和"
    texts = ["".join(random.Random(i).choices(common, k=30)) for i in range(400)] + ["罕见"]
    tokenizer = build_scratch_tokenizer(texts)
    assert all(c in tokenizer.get_vocab() for c in common)
    assert tokenizer.tokenize("罕春") == ["[UNK]", "春"]
    assert "罕" in build_scratch_tokenizer(["罕见", "春天"]).get_vocab()  # a handful of texts keeps every character


def test_masking_follows_berts_rule_and_never_masks_special_tokens(tokenizer):
    texts = [t for t, _ in toy_rows(per_class=100, seed=3)]
    sequences = corpus.pack(texts, tokenizer, 64)
    collator = PretrainCollator(tokenizer, 0.15, seed=1)
    batch = collator(sequences)
    original = collator.mlm.tokenizer.pad({"input_ids": [s["input_ids"] for s in sequences]},
                                          return_tensors="pt")["input_ids"]
    special = torch.tensor([tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
                            for ids in original.tolist()]).bool() | (original == tokenizer.pad_token_id)
    chosen = batch["labels"] != IGNORE
    share = chosen.sum().item() / (~special).sum().item()
    assert 0.14 <= share <= 0.16, share  # 15% ± 1 of the ordinary tokens
    assert not (chosen & special).any()  # [CLS], [SEP] and padding are never chosen
    assert torch.equal(batch["labels"][chosen], original[chosen])  # the label is the token that was there
    shown = batch["input_ids"][chosen]
    masked = (shown == tokenizer.mask_token_id).float().mean().item()
    kept = (shown == original[chosen]).float().mean().item()
    assert 0.77 <= masked <= 0.83 and 0.08 <= kept <= 0.12, (masked, kept)  # 80% [MASK], 10% kept
    assert 0.08 <= 1 - masked - kept <= 0.12  # 10% a random token
    assert torch.equal(batch["input_ids"][~chosen], original[~chosen])  # the rest is untouched


def test_whole_word_masking_masks_every_piece_of_a_word_together(tokenizer):
    texts = [t + " unbelievably" for t, _ in toy_rows(per_class=30, seed=5)]
    sequences = corpus.pack(texts, tokenizer, 64, offsets=True)
    batch = PretrainCollator(tokenizer, 0.15, whole_word_mask=True, seed=2)(sequences)
    chosen = batch["labels"] != IGNORE
    pieces = tokenizer.convert_ids_to_tokens(batch["labels"][chosen].tolist())
    assert chosen.any()
    for row in range(chosen.shape[0]):  # a continuation piece is chosen exactly when the piece before it is
        labels = [tokenizer.convert_ids_to_tokens(int(t)) for t in sequences[row]["input_ids"]]
        for i in range(1, len(labels)):
            if labels[i].startswith("##") and labels[i - 1] not in ("[CLS]", "[SEP]"):  # a word cut by packing
                assert chosen[row, i] == chosen[row, i - 1], (labels[i - 1], labels[i])
    assert pieces


def test_the_masked_only_loss_equals_the_full_vocabulary_loss(tokenizer):
    from transformers import BertConfig, BertForMaskedLM

    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64)).eval()
    batch = PretrainCollator(tokenizer, 0.15, seed=0)(corpus.pack([t for t, _ in toy_rows(10)], tokenizer, 32))
    ours, stats = masked_lm_loss(model, batch)
    stock = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert torch.allclose(ours, stock, atol=1e-5) and stats["masked"] == int((batch["labels"] != IGNORE).sum())


def test_packing_fills_whole_sequences_and_keeps_every_token(tokenizer):
    texts = [t for t, _ in toy_rows(per_class=20)]
    sequences = corpus.pack(texts, tokenizer, 32)
    assert all(len(s["input_ids"]) == 32 for s in sequences[:-1])
    body = [t for s in sequences for t in s["input_ids"][1:-1]]
    expected = [t for text in texts for t in [*tokenizer(text, add_special_tokens=False)["input_ids"],
                                              tokenizer.sep_token_id]][:-1]
    assert body[:len(expected) - 8] == expected[:len(expected) - 8]  # in order, nothing lost (up to a short tail)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_texts_attend_only_to_themselves_as_if_they_were_apart(tokenizer, attention):
    """Isolated packing: each text in a packed sequence gets the hidden states it gets alone (positions from 1
    after [CLS], as fine-tuning numbers them), so neighbours from other texts change nothing."""
    from transformers import BertConfig, BertForMaskedLM

    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64,
                                       attn_implementation=attention)).eval()
    texts = [t for t, _ in toy_rows(per_class=2, seed=7)][:5]
    sequences = corpus.pack(texts, tokenizer, 40, isolate=True)
    batch = PretrainCollator(tokenizer, 0.15, seed=0)(sequences)
    assert batch["attention_mask"].shape == (len(sequences), 1, 40, 40)
    with torch.no_grad():
        packed = model.bert(input_ids=torch.tensor([s["input_ids"] for s in sequences[:1]]),
                            attention_mask=batch["attention_mask"][:1],
                            position_ids=batch["position_ids"][:1]).last_hidden_state[0]
        first = tokenizer(texts[0])["input_ids"]  # [CLS] text [SEP], as fine-tuning sees it
        alone = model.bert(input_ids=torch.tensor([first])).last_hidden_state[0]
        assert torch.allclose(packed[:len(first)], alone, atol=1e-5)
        second = tokenizer(texts[1], add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
        end = min(40, len(first) + len(second))
        alone = model.bert(input_ids=torch.tensor([second[:end - len(first)]]),
                           position_ids=torch.arange(1, end - len(first) + 1)[None]).last_hidden_state[0]
        assert end < 40  # the second text whole in the first sequence: its [SEP] is its own
        assert torch.allclose(packed[len(first):end], alone, atol=1e-5)
        mixed = model.bert(input_ids=torch.tensor([s["input_ids"] for s in sequences[:1]])).last_hidden_state[0]
        assert not torch.allclose(mixed[:len(first)], packed[:len(first)], atol=1e-3)  # plain packing mixes them


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_isolating_mask_works_in_bf16_weights(tokenizer, attention):
    from transformers import BertConfig, BertForMaskedLM

    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64, attn_implementation=attention))
    batch = PretrainCollator(tokenizer, 0.15, seed=0)(corpus.pack([t for t, _ in toy_rows(10)], tokenizer, 32,
                                                                  isolate=True))
    loss, _ = masked_lm_loss(model.to(torch.bfloat16), batch)
    assert torch.isfinite(loss)


@pytest.fixture(scope="module")
def sayings_model(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("pretrain")
    # Packed texts start anywhere in a sequence, so the model must read the words around a blank, not learn
    # "position 5 is always worm": a tiny BERT needs a high rate and a few hundred steps for that (~30 s). At 400
    # steps two or three of the six blanks still ranked their word second, by the seed; at 600 all six were first
    # for seeds 1, 2 and 42 (the vocabulary and so the run are the same in every process).
    config = PretrainConfig(size="tiny", minutes=0, max_steps=STEPS, epochs=0, batch_size=32, max_length=32,
                            learning_rate=2e-3, evals=3, precision="fp32")
    events = list(pretrain(config, sayings_texts(), workspace=workspace, source="sayings.csv"))
    return events, workspace


def test_a_tiny_model_learns_to_fill_an_obvious_blank(sayings_model):
    from bertdemo.pretraining.fill import fill_mask, load_fill_model

    events, _ = sayings_model
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.metrics["steps"] == STEPS
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert len(evals) == 3 and all(e.objective == "mlm" for e in evals)
    assert evals[-1].val_loss < evals[0].val_loss  # it learned
    model, tokenizer = load_fill_model(done.run_dir)
    answers = [fill_mask(model, tokenizer, f"{NAMES[i]} and {NAMES[-1 - i]} said {saying}")[0]
               for i, saying in enumerate(SAYINGS.values())]
    assert [a["answer"] for a in answers] == list(SAYINGS)
    assert sum(a["rank"] == 1 for a in answers) >= 5, answers  # each saying's own word, not just a frequent one
    assert all(a["rank"] <= 3 for a in answers), answers


def test_the_saved_folder_loads_in_the_fill_mask_pipeline_and_says_what_made_it(sayings_model):
    from transformers import pipeline

    from bertdemo.pretraining.saved import list_pretrained

    events, workspace = sayings_model
    folder = events[-1].run_dir
    guesses = pipeline("fill-mask", model=folder)("ben and dora said the early bird catches the [MASK]")
    assert len(guesses) == 5 and guesses[0]["token_str"] == "worm"
    saved = list_pretrained(workspace)
    assert [s["path"] for s in saved] == [folder]
    info = saved[0]
    assert info["objective"] == "mlm" and info["steps"] == STEPS and info["fingerprint"] == corpus.fingerprint(
        sayings_texts()) and info["held_out"]["accuracy"] == events[-1].metrics["mlm_accuracy"]
    card = (__import__("pathlib").Path(folder) / "README.md").read_text()
    assert info["fingerprint"] in card and "2 layers × hidden 128 × 2 heads" in card and "masked-token" in card


def test_fine_tuning_starts_from_a_pretrained_folder(sayings_model, tmp_path):
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data
    from bertdemo.runs import load_run_info
    from bertdemo.training import train

    folder = sayings_model[0][-1].run_dir
    rows = [(t, animal(t)) for t in sayings_texts(4)[:120]]
    config = TrainConfig(model=folder, epochs=2, batch_size=16, learning_rate=1e-3, max_length=32, min_steps=0,
                         precision="fp32", freeze_word_embeddings=False, patience=0)
    data = load_data(write_csv(tmp_path / "sayings.csv", rows), config)
    done = list(train(config, data, workspace=tmp_path / "ws"))[-1]
    assert isinstance(done, DoneEvent) and load_run_info(done.run_dir).base_model == folder


def test_stop_keeps_the_last_good_state(tmp_path):
    from bertdemo.pretraining.saved import list_pretrained

    steps = []
    config = PretrainConfig(size="tiny", minutes=0, max_steps=1000, max_length=32, evals=100, precision="fp32")
    events = []
    for event in pretrain(config, sayings_texts()[:200], lambda: len(steps) >= 15, workspace=tmp_path):
        events.append(event)
        if isinstance(event, StepEvent):
            steps.append(event)
    assert isinstance(events[-1], CancelledEvent) and events[-1].step == 15
    assert isinstance(events[-2], EvalEvent) and events[-2].step == 15  # the steps since the last evaluation count
    saved = list_pretrained(tmp_path)
    assert len(saved) == 1 and saved[0]["status"] == "stopped" and saved[0]["steps"] == 15


def test_the_time_budget_ends_the_schedule_when_the_time_is_up(monkeypatch):
    from bertdemo.pretraining import loop

    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])
    budget = loop.Budget(PretrainConfig(minutes=10, warmup_ratio=0.1), steps_per_epoch=1000)
    factors = []
    for second in (0, 30, 60, 300, 540, 600, 700):
        now[0] = second
        budget.step = second  # one step a second: far fewer than the step cap of 40 epochs
        factors.append(round(budget.lr_factor(), 3))
    assert factors == [0.001, 0.5, 1.0, 0.556, 0.111, 0.0, 0.0]
    assert budget.estimated_steps() == 700  # past the end: what was done


def test_next_sentence_prediction_runs_on_texts_with_sentences(tmp_path):
    texts = [f"{t}. Then it rained on {n}. Everyone went home." for n, (t, _) in enumerate(toy_rows(per_class=15))]
    config = PretrainConfig(size="tiny", objective="mlm+nsp", minutes=0, max_steps=20, max_length=48, evals=1,
                            precision="fp32")
    events = list(pretrain(config, texts, workspace=tmp_path))
    assert isinstance(events[-1], DoneEvent) and events[-1].metrics["nsp_accuracy"] is not None
    with pytest.raises(ValueError, match="two or more sentences"):
        list(pretrain(config, [t for t, _ in toy_rows(per_class=15)], workspace=tmp_path))  # titles: one each


@pytest.mark.parametrize("settings, message", [
    ({"minutes": 0}, "a budget of 0 minutes trains nothing"),
    ({"size": "huge"}, "unknown size 'huge'"),
    ({"hidden": 100, "heads": 3}, "hidden must be a multiple of heads"),
    ({"objective": "clm"}, "objective must be one of mlm, mlm+nsp"),
    ({"minutes": float("nan")}, "minutes must be a number"),
])
def test_bad_settings_say_what_to_change(settings, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        PretrainConfig(**settings)


def test_too_few_texts_are_refused_with_what_would_do(tmp_path):
    with pytest.raises(ValueError, match="Too few texts to pretrain on: 3 different"):
        list(pretrain(PretrainConfig(size="tiny"), ["a b", "c d", "a b", " ", "e f"], workspace=tmp_path))


@pytest.mark.slow
def test_the_cli_pretrains_an_unlabeled_file_and_train_fine_tunes_from_it(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("note\n" + "\n".join(sayings_texts()[:150]), encoding="utf-8")  # one column, no labels
    cmd = [sys.executable, "-m", "bertdemo", "pretrain", str(path), "--size", "tiny", "--minutes", "0",
           "--max-steps", "30", "--max-length", "32", "--workspace", str(tmp_path / "ws"), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["metrics"]["steps"] == 30 and "held out @ step 30" in out.stderr
    bad = subprocess.run(cmd[:5] + ["--minutes", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "a budget of 0 minutes trains nothing" in bad.stderr
    rows = [(t, animal(t)) for t in sayings_texts(2)[:60]]
    train = subprocess.run([sys.executable, "-m", "bertdemo", "train", str(write_csv(tmp_path / "l.csv", rows)),
                            "--model", summary["model"], "--epochs", "1", "--max-length", "32", "--min-steps", "0",
                            "--workspace", str(tmp_path / "ws"), "--json"], capture_output=True, text=True,
                           timeout=300)
    assert train.returncode == 0, train.stderr
