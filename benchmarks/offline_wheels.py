"""Wheels for a GPU machine that has torch, transformers, peft and accelerate but no ms-swift and no network.

    python benchmarks/offline_wheels.py [--python 3.12] [--dest .whl]       # here, where PyPI is reachable
    python benchmarks/offline_wheels.py --install TARGET [--dest .whl]      # there: pip install --no-deps
    # then: PYTHONPATH=TARGET python benchmarks/gpu_train.py RECIPE
    python benchmarks/offline_wheels.py --have-from OTHER/bin/python        # leave out what OTHER holds

Which wheels is measured, not guessed: the tiny training path (train.py -> swift sft on the tiny model)
runs here with Python's import log on, every module it imports is mapped to its distribution, and the
distributions the GPU image already holds (its package list, device/KINDS.md, 2026-11-17) are left out.
(--have-from names another interpreter whose installed distributions are left out instead:
benchmarks/check_offline_wheels.sh proves the set on a fresh 3.11 venv here.)
Each remaining one is downloaded at the version installed here, for the target Python, as a manylinux
binary or a pure-Python wheel, --no-deps. The folder is checked against the 64 MiB a device call carries.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 64 * 1024 * 1024
# What the GPU machines' image already holds (their package list), normalised names.
ON_GPU_IMAGE = set("""absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite
lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas
nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile
nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax
opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel
wrapt xarray xxhash yarl zipp""".split())
# Imported here only because they are installed here, and not needed on one GPU: left out, with a note.
OPTIONAL = {"deepspeed": "ZeRO is for several GPUs; transformers imports DeepSpeed only when it is installed "
                         "(and it ships as a source distribution only)"}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
_IMPORT = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| (\s*)(\S+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def training_path_modules() -> set[str]:
    """Top-level modules imported by train.py and the swift sft process it starts, on the tiny model."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
        out = subprocess.run([sys.executable, "train.py", "recipes/tiny-demo.yaml", "max_steps=2", "save_steps=2",
                              "eval_steps=2", f"output_dir={tmp}"], cwd=ROOT, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"error: the tiny training run failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        logs = out.stderr + "".join(p.read_text(errors="replace") for p in Path(tmp).rglob("swift.log"))
    return {m.group(2).split(".")[0] for line in logs.splitlines() if (m := _IMPORT.match(line))}


def installed_in(python: str) -> tuple[set[str], str]:
    """Normalised names of the distributions another interpreter holds, and its X.Y version."""
    code = ("import importlib.metadata as m, sys; print('%d.%d' % sys.version_info[:2]); "
            "print('\\n'.join(d.metadata['Name'] for d in m.distributions()))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: cannot list the distributions of {python}: {out.stderr.strip()[-300:]}")
    version, *names = out.stdout.split()
    return {_norm(n) for n in names}, version


def needed_distributions(have: set[str]) -> dict[str, str]:
    """distribution -> installed version, for what the training path imports and the target lacks."""
    owners = md.packages_distributions()
    dists = {d for mod in training_path_modules() for d in owners.get(mod, [])}
    own = {"internvl-kit"}                     # travels as source, with the working tree
    return {d: md.version(d) for d in sorted(dists, key=_norm)
            if _norm(d) not in have and _norm(d) not in own and _norm(d) not in OPTIONAL}


def download(dists: dict[str, str], dest: Path, python: str) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
            python, "--implementation", "cp", "-d", str(dest)]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    missing = []
    for dist, version in dists.items():
        if subprocess.run(args + [f"{dist}=={version}"], capture_output=True, text=True).returncode != 0:
            missing.append(f"{dist}=={version}")
    if missing:
        raise SystemExit(f"error: no wheel for Python {python} on manylinux x86_64: {', '.join(missing)}")
    return sorted(dest.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", help="the target machine's Python (default: the GPU image's 3.12, or the "
                                     "--have-from interpreter's)")
    ap.add_argument("--have-from", metavar="PYTHON", help="leave out what this interpreter holds, instead of "
                                                          "the GPU image's package list")
    ap.add_argument("--dest", type=Path, default=ROOT / ".whl", help="folder for the wheels (git-ignored)")
    ap.add_argument("--install", type=Path, metavar="TARGET", help="install the folder's wheels into TARGET")
    args = ap.parse_args(argv)
    if args.install:
        wheels = sorted(args.dest.glob("*.whl"))
        if not wheels:
            raise SystemExit(f"error: no wheels in {args.dest}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--upgrade", "--target", str(args.install), *map(str, wheels)], check=True)
        print(f"installed {len(wheels)} wheels into {args.install}: export PYTHONPATH={args.install}")
        return 0
    have, python = ON_GPU_IMAGE, "3.12"
    if args.have_from:
        have, python = installed_in(args.have_from)
    python = args.python or python
    dists = needed_distributions(have)
    for name, why in OPTIONAL.items():
        print(f"left out: {name}: {why}")
    print(f"the training path needs {len(dists)} distribution(s) the target lacks: "
          + ", ".join(f"{d}=={v}" for d, v in dists.items()))
    wheels = download(dists, args.dest, python)
    size = sum(w.stat().st_size for w in wheels)
    print(f"{len(wheels)} wheels, {size / 2**20:.1f} MiB in {args.dest}")
    if size > LIMIT_BYTES and not args.have_from:     # the limit is the device call's; other targets differ
        print(f"error: over the {LIMIT_BYTES // 2**20} MiB a device call carries", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
