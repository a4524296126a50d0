"""bf16 training on CPU runs a bf16 model with fp32 master weights: updates must land on the masters, reach the
model, and the saved run must be fp32 with untouched weights exactly as they were."""
import dataclasses

import torch

from bertdemo.fast.master_weights import MasterWeights


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 3))
    model[0].weight.requires_grad_(False)  # a frozen part, like the word embeddings
    return model


def test_updates_go_through_fp32_masters_and_back():
    model = _tiny()
    frozen_before = model[0].weight.detach().clone()
    master = MasterWeights(model)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert [name for name, _ in master.named_trainable()] == ["1.weight", "1.bias"]
    optimizer = torch.optim.SGD([m for _, m in master.named_trainable()], lr=1e-3)
    before = master.master["1.weight"].detach().clone()

    model(torch.tensor([1, 2, 3])).float().sum().backward()
    master.grads_to_master()
    assert model[1].weight.grad is None and master.master["1.weight"].grad.dtype == torch.float32
    optimizer.step()
    master.write_back()
    moved = master.master["1.weight"] - before
    assert moved.abs().max() > 0
    assert torch.equal(model[1].weight, master.master["1.weight"].to(torch.bfloat16))
    # a step this small is below bf16's resolution for some weights: only the fp32 master keeps it
    fp32 = master.master["1.weight"].detach()
    assert not torch.equal(fp32, fp32.to(torch.bfloat16).float())

    master.restore_fp32(model, master.trainable_state())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.equal(model[0].weight, frozen_before)  # not a bf16 round trip
    assert torch.equal(model[1].weight, master.master["1.weight"])


def test_bf16_training_on_cpu_learns_and_saves_fp32_with_frozen_weights_intact(tiny_config, toy_data, tmp_path,
                                                                            tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from bertdemo.events import DoneEvent, StartEvent
    from bertdemo.training import train

    config = dataclasses.replace(tiny_config, precision="bf16", freeze_word_embeddings=True)
    events = list(train(config, toy_data, workspace=tmp_path))
    assert events[0].precision == "bf16"
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.metrics["accuracy"] > 0.8
    saved = AutoModelForSequenceClassification.from_pretrained(done.run_dir)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    assert saved.get_input_embeddings().weight.dtype == torch.float32
    assert torch.equal(saved.get_input_embeddings().weight, base.get_input_embeddings().weight)
    assert not torch.equal(saved.bert.encoder.layer[0].output.dense.weight,
                           base.bert.encoder.layer[0].output.dense.weight)
    assert isinstance(events[0], StartEvent)
