"""Beam search against transformers on the same weights: sequences, sequences_scores, transition scores."""
import pytest
import torch

from genzoo import gpt2
from genzoo.errors import ConfigError


def _ids(batch=2, length=10, vocab=320, seed=4):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def _hf_beams(hf_model, prompt, **kwargs):
    return hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, output_scores=True,
                             return_dict_in_generate=True, **{"pad_token_id": 0, **kwargs})


@pytest.mark.parametrize("length_penalty,early_stopping", [(1.0, False), (0.5, True), (2.0, "never"), (0.0, False)])
def test_four_beams_match_transformers(hf_model, genzoo_model, length_penalty, early_stopping):
    prompt = _ids()
    ref = _hf_beams(hf_model, prompt, max_new_tokens=12, num_beams=4, length_penalty=length_penalty,
                    early_stopping=early_stopping)
    out = genzoo_model.generate(prompt, max_new_tokens=12, num_beams=4, return_scores=True,
                                length_penalty=length_penalty, early_stopping=early_stopping)
    assert torch.equal(out.sequences, ref.sequences)
    assert torch.allclose(out.sequences_scores, ref.sequences_scores, atol=1e-4)
    assert torch.allclose(out.sequences_scores, out.scores.sum(1) / 12 ** length_penalty, atol=1e-4)


def test_beam_transition_scores_and_several_returned_beams(hf_model, genzoo_model):
    prompt = _ids(seed=7)
    ref = _hf_beams(hf_model, prompt, max_new_tokens=10, num_beams=4, num_return_sequences=3, length_penalty=1.5)
    out = genzoo_model.generate(prompt, max_new_tokens=10, num_beams=4, num_return_sequences=3, return_scores=True,
                                length_penalty=1.5, return_logits=True)
    assert out.sequences.shape == (6, 20) and torch.equal(out.sequences, ref.sequences)
    # the processed log-probs of every running beam at every step: transformers' `scores` for beam search
    assert len(out.logits) == len(ref.scores) == 10
    assert torch.allclose(torch.stack(out.logits), torch.stack(ref.scores), atol=1e-4)
    expected = hf_model.compute_transition_scores(ref.sequences, ref.scores, ref.beam_indices)
    assert torch.allclose(out.scores, expected, atol=1e-4)
    # sequences_scores = the summed transition scores / new length ** length_penalty, best beam first
    assert torch.allclose(out.sequences_scores, out.scores.sum(1) / 10 ** 1.5, atol=1e-5)
    per_prompt = out.sequences_scores.view(2, 3)
    assert bool((per_prompt[:, :-1] >= per_prompt[:, 1:]).all())


@pytest.mark.parametrize("early_stopping", [False, True])
def test_beams_that_end_at_endoftext_match_transformers(hf_model, genzoo_model, early_stopping):
    prompt = _ids(seed=3)
    # an end-of-text id that the beams actually produce, so that hypotheses finish early
    eos = int(genzoo_model.generate(prompt, max_new_tokens=4, num_beams=4)[0, 11])
    ref = _hf_beams(hf_model, prompt, max_new_tokens=12, num_beams=4, num_return_sequences=4, eos_token_id=eos,
                    pad_token_id=eos, early_stopping=early_stopping)
    out = genzoo_model.generate(prompt, max_new_tokens=12, num_beams=4, num_return_sequences=4, eos_token_id=eos,
                                return_scores=True, early_stopping=early_stopping)
    assert torch.equal(out.sequences, ref.sequences)
    assert torch.allclose(out.sequences_scores, ref.sequences_scores, atol=1e-4)
    ended = [row.tolist().index(eos, 10) for row in out.sequences if eos in row[10:].tolist()]
    assert ended and min(ended) < 21  # some hypothesis did finish before the last step
    rows = genzoo_model.generate(prompt.tolist(), max_new_tokens=12, num_beams=4, eos_token_id=eos)
    for row, full in zip(rows, out.sequences[::4].tolist()):
        assert row == full[:len(row)] and (row[-1] == eos or len(row) == 22)


def test_beams_with_no_repeat_ngram_match_transformers(hf_model, genzoo_model):
    prompt = _ids(seed=9)
    ref = _hf_beams(hf_model, prompt, max_new_tokens=15, num_beams=3, no_repeat_ngram_size=2, repetition_penalty=1.2)
    out = genzoo_model.generate(prompt, max_new_tokens=15, num_beams=3, no_repeat_ngram_size=2,
                                repetition_penalty=1.2, return_scores=True)
    assert torch.equal(out.sequences, ref.sequences)
    assert torch.allclose(out.sequences_scores, ref.sequences_scores, atol=1e-4)


def test_batched_left_padded_beams_equal_one_by_one(genzoo_model):
    prompts = [_ids(1, n, seed=20 + n)[0].tolist() for n in (3, 9, 6)]
    batched = genzoo_model.generate(prompts, max_new_tokens=8, num_beams=3, return_scores=True)
    for prompt, row, score in zip(prompts, batched.sequences, batched.sequences_scores):
        alone = genzoo_model.generate(prompt, max_new_tokens=8, num_beams=3, return_scores=True)
        assert alone.sequences == row and alone.sequences_scores[0] == pytest.approx(score, abs=1e-5)


def test_one_beam_is_greedy(genzoo_model):
    prompt = _ids()
    assert torch.equal(genzoo_model.generate(prompt, max_new_tokens=6, num_beams=1, temperature=0),
                       genzoo_model.generate(prompt, max_new_tokens=6, temperature=0))


def test_kv_cache_reorder():
    config = gpt2.GPTConfig(vocab_size=10, n_positions=8, n_embd=8, n_layer=2, n_head=2)
    cache = gpt2.KVCache(config, batch_size=3, max_len=8, device="cpu", dtype=torch.float32)
    for row in range(3):
        cache.k[:, row], cache.v[:, row] = row, 10 + row
    cache.length = 5
    cache.reorder(torch.tensor([2, 2, 0]))
    assert cache.k[:, :, :, :5].amax(dim=(0, 2, 3, 4)).tolist() == [2, 2, 0]
    assert cache.v[:, :, :, :5].amin(dim=(0, 2, 3, 4)).tolist() == [12, 12, 10]


def test_beam_search_must_fit_the_window(genzoo_model):
    with pytest.raises(ConfigError, match="context window"):
        genzoo_model.generate(_ids(length=60), max_new_tokens=10, num_beams=2)
    assert genzoo_model.generate(_ids(), max_new_tokens=0, num_beams=2).shape == (2, 10)


def test_a_stopping_criterion_ends_beams_like_endoftext(genzoo_model):
    prompt = _ids(seed=3).tolist()
    eos = int(genzoo_model.generate(torch.tensor(prompt), max_new_tokens=4, num_beams=4)[0, 11])
    by_eos = genzoo_model.generate(prompt, max_new_tokens=12, num_beams=4, eos_token_id=eos, return_scores=True)
    by_rule = genzoo_model.generate(prompt, max_new_tokens=12, num_beams=4, return_scores=True,
                                    stopping_criteria=lambda ids, scores: ids[:, -1] == eos)
    assert by_rule.sequences == by_eos.sequences and any(len(r) < 22 for r in by_rule.sequences)
    assert by_rule.sequences_scores == pytest.approx(by_eos.sequences_scores, abs=1e-6)
    assert [len(s) for s in by_rule.scores] == [len(r) - 10 for r in by_rule.sequences]


@pytest.mark.parametrize("mode", ["static"])
def test_beam_search_through_the_fixed_shape_decode_step_equals_eager(mode):
    torch.manual_seed(0)
    model = gpt2.GPT(gpt2.GPTConfig(vocab_size=64, n_positions=64, n_embd=32, n_layer=2, n_head=2)).eval()
    prompts = [[5, 6, 7], [9, 3]]
    eager = model.generate(prompts, max_new_tokens=6, num_beams=3, eos_token_id=None)
    fixed = model.set_decode_mode(mode).generate(prompts, max_new_tokens=6, num_beams=3, eos_token_id=None)
    model.set_decode_mode("eager")
    assert fixed == eager
