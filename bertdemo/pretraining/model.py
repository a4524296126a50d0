"""The model pretraining starts from: a new small BERT with a vocabulary learned from the texts, or an existing
model (the embedded default, a hub id, a folder) that goes on pretraining, with a new MLM head when its
checkpoint has none (the embedded default is a sentence encoder: ``BertModel`` without one)."""
from __future__ import annotations

from bertdemo.models import load_tokenizer, pickles_allowed, resolve_model
from bertdemo.pretraining.config import SCRATCH, PretrainConfig
from bertdemo.training.scratch import build_scratch_tokenizer


def build(config: PretrainConfig, texts: list[str]) -> tuple[object, object, tuple[str, ...]]:
    """(tokenizer, model, notes) for ``config``; the model is fp32, in train mode, with SDPA attention."""
    nsp = config.objective == "mlm+nsp"
    if config.start == SCRATCH:
        from transformers import BertConfig, BertForMaskedLM, BertForPreTraining

        from bertdemo.seeding import seeded

        tokenizer = build_scratch_tokenizer(texts, vocab_size=config.vocab_size)
        layers, hidden, heads = config.shape()
        bert = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, intermediate_size=4 * hidden,
                          max_position_embeddings=max(128, config.max_length), pad_token_id=tokenizer.pad_token_id,
                          attn_implementation="sdpa")
        tokenizer.model_max_length = bert.max_position_embeddings
        with seeded(config.seed):
            model = (BertForPreTraining if nsp else BertForMaskedLM)(bert)
        return tokenizer, model, (f"a new BERT: {layers} layers, hidden {hidden}, {heads} heads, "
                                  f"{len(tokenizer):,} word-pieces learned from the texts",)
    return _continued(config, nsp)


def _continued(config: PretrainConfig, nsp: bool):
    from transformers import AutoConfig, AutoModelForMaskedLM, BertForPreTraining

    from bertdemo.seeding import seeded

    source = resolve_model(config.start)
    tokenizer = load_tokenizer(config.start)
    if tokenizer.mask_token is None:
        raise ValueError(f"{config.start[:120]} has no [MASK] token, so it cannot go on with masked language "
                         "modelling. Start from scratch, or pick a BERT-family model.")
    kind = AutoConfig.from_pretrained(source, trust_remote_code=False).model_type
    if nsp and kind != "bert":
        raise ValueError(f"Next-sentence prediction needs a BERT; {config.start[:120]} is a {kind}. Use the "
                         "objective mlm.")
    kwargs = {"attn_implementation": "sdpa", "trust_remote_code": False,
              "use_safetensors": None if pickles_allowed() else True, "output_loading_info": True}
    try:
        with seeded(config.seed):  # a new head's initialisation
            model, info = (BertForPreTraining if nsp else AutoModelForMaskedLM).from_pretrained(source, **kwargs)
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"Could not load {config.start[:120]} to go on pretraining: "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    new = [k for k in info.get("missing_keys", []) if "predictions" in k or "seq_relationship" in k or "lm_head" in k]
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and config.max_length > positions:
        raise ValueError(f"max_length {config.max_length} is longer than this model reads ({positions}). "
                         f"Set max_length to {positions} or less.")
    notes = [f"continued pretraining of {config.start}"]
    if new:
        notes.append("its checkpoint has no masked-LM head: a new one was made (the output layer shares the "
                     "word embeddings)")
    return tokenizer, model, tuple(notes)
