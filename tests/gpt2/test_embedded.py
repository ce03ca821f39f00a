"""The embedded Shakespeare model ships with genzoo and works offline; the demo writes text from it."""
from genzoo import gpt2, registry
from genzoo.gpt2.cli import EMBEDDED, demo


def test_embedded_model_loads_offline_and_is_small():
    entry = registry.get(EMBEDDED)
    assert entry.embedded and entry.family == "gpt2"
    folder = registry.embedded_dir() / EMBEDDED
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 10 * 2**20
    model = gpt2.from_pretrained(EMBEDDED, device="cpu")
    assert model.num_parameters() == entry.params
    assert model.tokenizer.vocab_size == 65


def test_embedded_model_has_learned_shakespeare():
    import torch

    from genzoo.datasets import shakespeare

    model = gpt2.from_pretrained(EMBEDDED, device="cpu")
    text = shakespeare("val")[:100 * 65]  # 100 windows of 64 characters + the next one
    ids = torch.tensor(model.tokenizer.encode(text)).view(100, 65)
    _, loss = model(ids[:, :-1], targets=ids[:, 1:])
    assert loss.item() < 2.2  # a uniform guess is ln 65 = 4.17; the trained model is near 1.8


def test_demo_writes_text(tmp_path):
    paths = demo(tmp_path)
    assert [p.name for p in paths] == ["gpt2_shakespeare.txt"]
    text = paths[0].read_text()
    assert "ROMEO:" in text and len(text) > 600
    assert paths[0].read_text() == demo(tmp_path / "again")[0].read_text()  # seeded
