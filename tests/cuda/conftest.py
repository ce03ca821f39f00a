"""The `cuda` suite: every family on every device x {fp32, bf16, fp16}.

Each test takes a `device` ("cpu" always, "cuda" where torch sees a GPU, skipped with the reason otherwise) and,
where it matters, a `dtype`. The CPU runs keep the logic exercised in CI on tiny models; the CUDA runs are the
point of the suite (`pytest -m cuda`). TF32 is off for every test here: parity is checked in real float32.
"""
import pytest
import torch

from genzoo.runtime import tf32

NO_CUDA = "no CUDA GPU visible to torch (torch.cuda.is_available() is False): the CUDA case runs only on a GPU"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# Tiny reference configs (random weights, saved as the Hub stores them, loaded by genzoo).
GPT2_CONFIG = dict(vocab_size=320, n_positions=64, n_embd=64, n_layer=2, n_head=4, initializer_range=0.2,
                   bos_token_id=None, eos_token_id=None, pad_token_id=None)
UNET_CONFIG = dict(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
                   down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                   attention_head_dim=4, norm_num_groups=4)
VAE_CONFIG = dict(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=8, sample_size=16)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/cuda/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.cuda)


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    return torch.device(request.param)


@pytest.fixture(params=list(DTYPES))
def dtype(request):
    return DTYPES[request.param]


@pytest.fixture(autouse=True)
def _exact_float32():
    with tf32(False):
        yield


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("cuda-gpt2")
    GPT2LMHeadModel(GPT2Config(**GPT2_CONFIG)).eval().save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def unet_dir(tmp_path_factory):
    from diffusers import DDIMScheduler, UNet2DModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("cuda-unet")
    model = UNet2DModel(**UNET_CONFIG).eval()
    with torch.no_grad():  # diffusers zero-inits some layers: randomise so every layer matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(directory)
    DDIMScheduler(num_train_timesteps=1000).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def vae_dir(tmp_path_factory):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("cuda-sd-vae")
    AutoencoderKL(**VAE_CONFIG).eval().save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def gan_dir(tmp_path_factory):
    from genzoo import gan

    G, _ = gan.new_gan(gan.DCGANConfig(latent_dim=8, image_size=16, channels=1, ngf=8, ndf=8), seed=0)
    directory = tmp_path_factory.mktemp("cuda-gan")
    G.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def cyclegan_dir(tmp_path_factory):
    from genzoo.cyclegan.model import GeneratorConfig, build_generator

    torch.manual_seed(0)
    G = build_generator(GeneratorConfig(ngf=8, n_blocks=2)).eval()
    directory = tmp_path_factory.mktemp("cuda-cyclegan")
    G.save_pretrained(directory)
    return directory
