"""The CycleGAN catalog: junyanz's published generators and genzoo's embedded MNIST model. Imports only the registry.

junyanz's pretrained CycleGAN generators (scripts/download_cyclegan_model.sh in
junyanz/pytorch-CycleGAN-and-pix2pix) are single .pth files on his lab's web server:
    http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/NAME.pth
Each is one direction's generator (G_A of that training run): ResnetGenerator, 9 residual blocks, ngf 64,
instance norm, no dropout, 3 -> 3 channels (11,378,179 parameters), trained on 256x256 crops.

UNPINNED DOWNLOADS: junyanz publishes no checksums for these files, and genzoo was written on a machine without
network access, so no digest could be computed or checked here; no trustworthy published sha256 was found either.
Every entry below therefore has sha256=None, and genzoo.hub.download_url ACCEPTS WHATEVER THE SERVER SENDS for them
(the file is still only read with torch.load(weights_only=True), so it cannot run code, and a file that is not a
generator of the expected shape is refused by the loader). To pin one, download it once, run
`python -c "from genzoo.hub import sha256sum; print(sha256sum('~/.cache/genzoo/urls/NAME.pth'))"` and put the
digest here.
"""
from ..registry import ModelEntry, register

JUNYANZ_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"
RESNET_9BLOCKS = {"arch": "resnet", "n_blocks": 9, "ngf": 64, "norm": "instance", "input_nc": 3, "output_nc": 3}
RESNET_9BLOCKS_PARAMS = 11_378_179

PUBLISHED = {
    "horse2zebra": "horses -> zebras (ImageNet wild horses / zebras)",
    "zebra2horse": "zebras -> horses",
    "apple2orange": "apples -> oranges (ImageNet)",
    "orange2apple": "oranges -> apples",
    "summer2winter_yosemite": "Yosemite in summer -> winter (Flickr)",
    "winter2summer_yosemite": "Yosemite in winter -> summer",
    "monet2photo": "Monet paintings -> photos",
    "style_monet": "photos -> Monet paintings",
    "style_cezanne": "photos -> Cezanne paintings",
    "style_ukiyoe": "photos -> Ukiyo-e prints",
    "style_vangogh": "photos -> Van Gogh paintings",
    "sat2map": "satellite images -> Google maps",
    "map2sat": "Google maps -> satellite images",
    "cityscapes_photo2label": "Cityscapes photos -> semantic label maps",
    "cityscapes_label2photo": "Cityscapes label maps -> photos",
    "facades_photo2label": "CMP facades photos -> label maps",
    "facades_label2photo": "CMP facades label maps -> photos",
    "iphone2dslr_flower": "iPhone flower photos -> DSLR (shallow depth of field)",
}

# Published sha256 digests: none could be found (see above). Keep None rather than inventing one.
SHA256: dict[str, str] = {}

for _name, _what in PUBLISHED.items():
    register(ModelEntry(
        name=_name, family="cyclegan", description=f"junyanz CycleGAN generator: {_what}",
        url=JUNYANZ_URL.format(_name), sha256=SHA256.get(_name), files=(f"{_name}.pth",),
        params=RESNET_9BLOCKS_PARAMS, config=RESNET_9BLOCKS))

EMBEDDED = "mnist-cyclegan"
register(ModelEntry(
    name=EMBEDDED, family="cyclegan", embedded=True,
    description="MNIST digits <-> colour-inverted digits, trained unpaired by genzoo (scripts/train_embedded_cyclegan.py); "
                "from_pretrained gives G_A (normal -> inverted), direction='BtoA' gives G_B",
    files=("model.safetensors", "config.json"), params=67_873,
    config={"arch": "resnet", "n_blocks": 3, "ngf": 8, "input_nc": 1, "output_nc": 1}))
