"""Peak memory of loading a pretrained-size CLIP and VQGAN on the CPU (Binder has 2 GB).

The real weights cannot be downloaded here, so random-weight stand-ins are written in
the official file layouts: an open_clip ViT-B-32 state dict (``open_clip_pytorch_model.bin``,
torch.save) and a taming ``vqgan_imagenet_f16_16384`` .ckpt with Lightning's
``optimizer_states`` beside ``state_dict``. Each load runs in a fresh process; the
figure is that process's peak resident memory (VmHWM, Linux).

    python benchmarks/bench_load_memory.py [--keep DIR]

"before" is the way mmlearn loaded them until this benchmark was written: open_clip's
``pretrained=path`` (reads the whole file into memory next to the model) and a plain
``torch.load`` of the whole .ckpt.
"""

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PEAK = textwrap.dedent("""
    import sys
    def peak_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
""")

CASES = {
    "CLIP ViT-B-32, before (open_clip pretrained=path)": """
        import open_clip
        model, _, _ = open_clip.create_model_and_transforms("ViT-B-32", pretrained=PATH_CLIP)
    """,
    "CLIP ViT-B-32, after (mmlearn.clip.load_clip)": """
        from mmlearn.clip import load_clip
        clip = load_clip(PATH_CLIP, model="ViT-B-32", device="cpu")
    """,
    "CLIP ViT-B-32 after, then 64 pictures encoded": """
        from mmlearn import shapes
        from mmlearn.clip import load_clip
        clip = load_clip(PATH_CLIP, model="ViT-B-32", device="cpu")
        world = shapes.ShapeWorld(64, split="train", seed=0)
        clip.encode_images([world[i][0] for i in range(64)])
    """,
    "taming VQGAN f16_16384, before (torch.load of the whole .ckpt)": """
        import torch
        from mmlearn import vqgan
        model = vqgan.vqgan_from_config(PATH_YAML)
        state = torch.load(PATH_CKPT, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(vqgan.model_weights(state, model))
    """,
    "taming VQGAN f16_16384, after (mmlearn.vqgan.load_taming_vqgan)": """
        from mmlearn import vqgan
        model = vqgan.load_taming_vqgan(PATH_CKPT, PATH_YAML, device="cpu")
    """,
}


def write_stand_ins(folder: Path) -> dict[str, str]:
    """Random weights in the official layouts; returns the paths the cases use."""
    import open_clip
    import torch
    import yaml

    from mmlearn import vqgan
    torch.manual_seed(0)
    clip_path = folder / "open_clip_pytorch_model.bin"
    if not clip_path.exists():
        model = open_clip.create_model("ViT-B-32")
        torch.save(model.state_dict(), clip_path)
    yaml_path, ckpt_path = folder / "model.yaml", folder / "last.ckpt"
    if not ckpt_path.exists():
        config = {"model": {"target": "taming.models.vqgan.VQModel", "params": {
            "embed_dim": 256, "n_embed": 16384,
            "ddconfig": {"double_z": False, "z_channels": 256, "resolution": 256,
                         "in_channels": 3, "out_ch": 3, "ch": 128, "ch_mult": [1, 1, 2, 2, 4],
                         "num_res_blocks": 2, "attn_resolutions": [16], "dropout": 0.0}}}}
        yaml_path.write_text(yaml.safe_dump(config))
        model = vqgan.vqgan_from_config(yaml_path)
        weights = model.state_dict()
        # Adam keeps two moments per weight: the optimizer states are twice the model.
        moments = {i: {"exp_avg": torch.zeros_like(v), "exp_avg_sq": torch.zeros_like(v)}
                   for i, v in enumerate(weights.values()) if v.is_floating_point()}
        torch.save({"epoch": 1, "global_step": 1, "state_dict": weights,
                    "optimizer_states": [{"state": moments}]}, ckpt_path)
    return {"PATH_CLIP": str(clip_path), "PATH_YAML": str(yaml_path), "PATH_CKPT": str(ckpt_path)}


def peak_of(code: str, paths: dict[str, str]) -> float:
    setup = "".join(f"{name} = {value!r}\n" for name, value in paths.items())
    program = PEAK + setup + textwrap.dedent(code) + "\nprint(peak_mb())\n"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            env={"MMLEARN_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
                                 "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the stand-ins (kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_stand_ins(folder)
        print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
        for name, code in CASES.items():
            print(f"{name:<66} {peak_of(code, paths):7.0f} MB peak")
        print(f"load average after:  {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
