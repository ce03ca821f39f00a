"""Logits processors and stopping criteria: transformers' definitions, parity on the same weights, and bad input."""
import pytest
import torch

from genzoo import gpt2
from genzoo.errors import ConfigError
from genzoo.gpt2.processors import (LogitsProcessorList, MaxTime, NoRepeatNGram, RepetitionPenalty,
                                    StoppingCriteriaList, StopStrings)


def _ids(batch=2, length=10, vocab=320, seed=4):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def eos_model():
    """A tiny char model whose end-of-text id is 0."""
    torch.manual_seed(1)
    config = gpt2.GPTConfig(vocab_size=40, n_positions=48, n_embd=32, n_layer=1, n_head=2, bos_token_id=1,
                            eos_token_id=0,
                            tokenizer={"type": "char", "chars": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"})
    return gpt2.GPT(config).eval()


@pytest.mark.parametrize("penalty", [0.7, 1.3, 2.0])
def test_repetition_penalty_is_transformers_definition(penalty):
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    ids = torch.randint(0, 50, (3, 30), generator=torch.Generator().manual_seed(0))  # repeats included
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(1)) * 3
    expected = RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone())
    assert torch.equal(RepetitionPenalty(penalty)(ids, scores.clone()), expected)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_no_repeat_ngram_is_transformers_definition(n):
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    ids = torch.randint(0, 6, (4, 25), generator=torch.Generator().manual_seed(n))  # a small alphabet: many repeats
    scores = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    expected = NoRepeatNGramLogitsProcessor(n)(ids, scores.clone())
    got = NoRepeatNGram(n)(ids, scores.clone())
    assert torch.equal(got, expected)
    assert bool(torch.isinf(got).any())  # the check is not vacuous


def test_greedy_with_penalties_matches_transformers(hf_model, genzoo_model):
    prompt = _ids()
    expected = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=40, do_sample=False,
                                 pad_token_id=0, repetition_penalty=1.3, no_repeat_ngram_size=3)
    got = genzoo_model.generate(prompt, max_new_tokens=40, temperature=0, repetition_penalty=1.3,
                                no_repeat_ngram_size=3)
    assert torch.equal(got, expected)
    plain = genzoo_model.generate(prompt, max_new_tokens=40, temperature=0)
    assert not torch.equal(plain, got)  # the processors changed something
    for row in got.tolist():
        trigrams = list(zip(row, row[1:], row[2:]))
        assert len(trigrams) == len(set(trigrams))


def test_transition_scores_match_transformers(hf_model, genzoo_model):
    """return_scores: log-probs of the chosen tokens = compute_transition_scores(..., normalize_logits=True)."""
    prompt = _ids(seed=5)
    ref = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12, do_sample=False,
                            pad_token_id=0, repetition_penalty=1.3, output_scores=True, return_dict_in_generate=True)
    expected = hf_model.compute_transition_scores(ref.sequences, ref.scores, normalize_logits=True)
    out = genzoo_model.generate(prompt, max_new_tokens=12, temperature=0, repetition_penalty=1.3, return_scores=True,
                                return_logits=True)
    assert torch.equal(out.sequences, ref.sequences)
    assert out.scores.shape == (2, 12) and torch.allclose(out.scores, expected, atol=1e-4)
    assert len(out.logits) == 12 and out.logits[0].shape == (2, 320)
    assert torch.allclose(torch.stack(out.logits, 1), torch.stack(ref.scores, 1), atol=1e-4)
    listed = genzoo_model.generate(prompt[0].tolist(), max_new_tokens=12, temperature=0, repetition_penalty=1.3,
                                   return_scores=True)
    assert listed.sequences == ref.sequences[0].tolist()
    assert listed.scores == pytest.approx(expected[0].tolist(), abs=1e-4)


def test_seeded_sampling_with_processors_is_reproducible(genzoo_model):
    options = dict(max_new_tokens=20, temperature=0.9, top_k=50, repetition_penalty=1.2, no_repeat_ngram_size=2)
    a = genzoo_model.generate(_ids(), seed=3, **options)
    b = genzoo_model.generate(_ids(), generator=torch.Generator().manual_seed(3), **options)
    c = genzoo_model.generate(_ids(), seed=4, **options)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_num_return_sequences(genzoo_model):
    prompt = _ids(batch=1)[0].tolist()
    rows = genzoo_model.generate(prompt, max_new_tokens=8, seed=0, num_return_sequences=3)
    assert len(rows) == 3 and all(r[:10] == prompt and len(r) == 18 for r in rows)
    assert len({tuple(r) for r in rows}) > 1
    # n samples of one prompt in one batch = that prompt repeated n times, same seed
    assert rows == genzoo_model.generate([prompt] * 3, max_new_tokens=8, seed=0)
    batch = genzoo_model.generate(_ids(), max_new_tokens=5, seed=0, num_return_sequences=2)
    assert batch.shape == (4, 15) and torch.equal(batch[0, :10], batch[1, :10])
    assert torch.equal(batch[2, :10], _ids()[1])
    assert genzoo_model.generate(torch.tensor(prompt), max_new_tokens=4, seed=0, num_return_sequences=2).shape == (2, 14)


def test_generate_text_and_stream_text_take_the_controls(genzoo_model):
    from genzoo.gpt2 import CharTokenizer

    tok = CharTokenizer("".join(chr(0x100 + i) for i in range(320)))  # one character per id of this model
    abc, de = tok.chars[5:8], tok.chars[9:11]
    options = dict(max_new_tokens=15, temperature=0, repetition_penalty=1.3, no_repeat_ngram_size=2)
    text = genzoo_model.generate_text(abc, tokenizer=tok, **options)
    assert len(text) == 18 and text == abc + "".join(genzoo_model.stream_text(abc, tokenizer=tok, **options))
    assert text != genzoo_model.generate_text(abc, tokenizer=tok, max_new_tokens=15, temperature=0)
    texts = genzoo_model.generate_text([abc, de], tokenizer=tok, max_new_tokens=5, seed=0, num_return_sequences=2)
    assert len(texts) == 2 and all(len(t) == 2 for t in texts) and texts[1][0].startswith(de)


def test_min_new_tokens_and_a_user_processor(eos_model):
    def prefer_eos(input_ids, scores):
        scores = scores.clone()
        scores[:, 0] += 100.0  # end-of-text becomes the obvious choice...
        return scores

    assert eos_model.generate([5, 6], max_new_tokens=10, temperature=0, logits_processor=prefer_eos) == [5, 6, 0]
    out = eos_model.generate([5, 6], max_new_tokens=10, temperature=0, logits_processor=[prefer_eos],
                             min_new_tokens=4)
    assert out[-1] == 0 and len(out) == 2 + 5 and 0 not in out[2:-1]  # ...but not before 4 new tokens


def test_user_processor_sees_ids_and_fp32_scores(genzoo_model):
    seen = []

    def spy(input_ids, scores):
        seen.append((tuple(input_ids.shape), scores.dtype))
        return scores

    genzoo_model.generate(_ids(), max_new_tokens=3, temperature=0, logits_processor=LogitsProcessorList([spy]))
    assert seen == [((2, 10), torch.float32), ((2, 11), torch.float32), ((2, 12), torch.float32)]


def test_stopping_criteria(genzoo_model):
    def stop_row_0_at_13(input_ids, scores):
        return torch.tensor([input_ids.size(1) >= 13, False])

    out = genzoo_model.generate(_ids().tolist(), max_new_tokens=8, temperature=0, stopping_criteria=stop_row_0_at_13)
    assert len(out[0]) == 13 and len(out[1]) == 18
    out = genzoo_model.generate(_ids(), max_new_tokens=8, temperature=0, stopping_criteria=lambda ids, s: True)
    assert out.shape == (2, 11)
    assert genzoo_model.generate(_ids(), max_new_tokens=50, temperature=0, max_time=1e-9).shape == (2, 11)
    criteria = StoppingCriteriaList([lambda ids, s: torch.tensor([True, False]), lambda ids, s: False])
    assert criteria(_ids(), None).tolist() == [True, False]
    timer = MaxTime(60)
    assert not timer(_ids(), None)


def test_stop_strings_criterion_looks_at_new_text_only():
    tok = gpt2.Tokenizer()
    prompt = tok.encode("The end. ")
    stop = StopStrings(tok, ["end."], prompt_length=len(prompt))
    more = prompt + tok.encode("And then")
    assert stop(torch.tensor([more]), None).tolist() == [False]
    assert stop(torch.tensor([more + tok.encode(" the end.")]), None).tolist() == [True]
    assert StopStrings(tok, "end.")(torch.tensor([prompt]), None).tolist() == [True]


@pytest.mark.parametrize("kwargs,option", [
    (dict(repetition_penalty=-1.0), "repetition_penalty"),
    (dict(repetition_penalty=0), "repetition_penalty"),
    (dict(repetition_penalty=float("nan")), "repetition_penalty"),
    (dict(repetition_penalty=float("inf")), "repetition_penalty"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
    (dict(no_repeat_ngram_size=2.5), "no_repeat_ngram_size"),
    (dict(min_new_tokens=-2), "min_new_tokens"),
    (dict(max_time=-1), "max_time"),
    (dict(num_beams=0), "num_beams"),
    (dict(num_beams=2, top_k=5), "num_beams"),
    (dict(num_beams=2, temperature=0.7), "num_beams"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
    (dict(num_return_sequences=0), "num_return_sequences"),
    (dict(num_return_sequences=2, temperature=0), "num_return_sequences"),
    (dict(num_beams=2, length_penalty="long"), "length_penalty"),
    (dict(num_beams=2, length_penalty=float("inf")), "length_penalty"),
    (dict(num_beams=2, early_stopping="sometimes"), "early_stopping"),
    (dict(logits_processor=[1]), "logits_processor"),
    (dict(stopping_criteria="stop"), "stopping_criteria"),
])
def test_bad_options_name_the_option(genzoo_model, kwargs, option):
    with pytest.raises(ConfigError, match=option):
        genzoo_model.generate(_ids(), max_new_tokens=3, **kwargs)


@pytest.mark.parametrize("method,kwargs,message", [
    ("generate", dict(do_sample=True), r"generate\(\) has no option 'do_sample': genzoo samples when temperature > 0"),
    ("generate", dict(max_length=20), "use max_new_tokens"),
    ("generate", dict(repetiton_penalty=1.2), "did you mean 'repetition_penalty'"),
    ("generate_text", dict(do_sample=False), "do_sample"),
    ("generate_text", dict(num_beam=2), "did you mean 'num_beams'"),   # passed on to generate(): its names count
    ("stream_text", dict(num_beams=2), r"stream_text\(\) has no option 'num_beams'"),
])
def test_options_genzoo_does_not_take_are_named(genzoo_model, method, kwargs, message):
    """transformers' spellings and typos get a genzoo error with what to use, not Python's TypeError."""
    prompt = _ids() if method == "generate" else "ab"
    with pytest.raises(ConfigError, match=message):
        result = getattr(genzoo_model, method)(prompt, max_new_tokens=3, **kwargs)
        list(result) if method == "stream_text" else None


def test_min_new_tokens_needs_an_end_of_text_id(genzoo_model):
    with pytest.raises(ConfigError, match="min_new_tokens"):
        genzoo_model.generate(_ids(), max_new_tokens=3, min_new_tokens=2)  # this model has none


def test_cli_generate_options(capsys):
    from genzoo.cli import main

    assert main(["generate", "ROMEO:", "--max-new-tokens", "20", "--temperature", "0", "--repetition-penalty", "1.3",
                 "--no-repeat-ngram-size", "3"]) == 0
    penalised = capsys.readouterr().out
    assert main(["generate", "ROMEO:", "--max-new-tokens", "20", "--num-beams", "3"]) == 0
    beams = capsys.readouterr().out
    assert penalised.startswith("ROMEO:") and beams.startswith("ROMEO:") and len(beams) > 10
    assert main(["generate", "x", "--repetition-penalty", "-1"]) == 2
    assert "repetition_penalty" in capsys.readouterr().err
    # every bad value is refused before the model loads and before any text is printed
    for argv, option in ((["--num-beams", "0"], "--num-beams"),
                         (["--num-beams", "2", "--temperature", "0.7"], "sample"),
                         (["--num-beams", "2", "--top-p", "0.9"], "sample"), (["--max-time", "-3"], "max_time"),
                         (["--min-new-tokens", "-1"], "min_new_tokens"), (["--no-repeat-ngram-size", "-2"], "ngram"),
                         (["--num-beams", "2", "--length-penalty", "nan"], "length_penalty")):
        assert main(["generate", "x", "--model", "no-such-model", *argv]) == 2
        out, err = capsys.readouterr()
        assert out == "" and option in err and "no-such-model" not in err


def test_padded_batch_rows_are_processed_as_alone(genzoo_model, eos_model):
    """The padding of shorter prompts is not text: a repetition penalty or an n-gram ban must not see it."""
    prompts = [_ids(1, n, seed=30 + n)[0].tolist() for n in (3, 10, 6)]
    options = dict(max_new_tokens=12, temperature=0, repetition_penalty=1.5, no_repeat_ngram_size=2)
    batched = genzoo_model.generate(prompts, **options)
    assert batched == [genzoo_model.generate(p, **options) for p in prompts]
    beams = genzoo_model.generate(prompts, num_beams=3, **{**options, "temperature": 1.0})
    assert beams == [genzoo_model.generate(p, num_beams=3, **{**options, "temperature": 1.0}) for p in prompts]
    # the end-of-text id is this model's pad id: penalising the padding would change the row
    short, long = [5], [7, 8, 9, 10, 11, 12]
    seen = []
    eos_model.generate([short, long], max_new_tokens=2, temperature=0, min_new_tokens=1,
                       logits_processor=lambda ids, scores: seen.append(ids.tolist()) or scores)
    assert sorted(seen[:2]) == [[[5]], [[7, 8, 9, 10, 11, 12]]]  # row by row, padding removed
    assert sorted(len(ids[0]) for ids in seen[2:]) == [2, 7]


def test_scores_of_a_certain_choice_are_zero(genzoo_model):
    """Sampling with top_k=1 leaves one possible token: its log-probability under the sampler is 0."""
    out = genzoo_model.generate(_ids(), max_new_tokens=5, top_k=1, seed=0, return_scores=True)
    assert out.scores.shape == (2, 5) and bool((out.scores.abs() < 1e-6).all())
    free = genzoo_model.generate(_ids(), max_new_tokens=5, seed=0, return_scores=True)
    assert bool((free.scores < 0).all()) and free.logits is None
