"""swift external plugin (`--external_plugins`): what swift cannot be told with a flag.

1. -HF tiling. swift's internvl_chat templates read MAX_NUM (max tiles per image) from the environment;
   its internvl_hf template ignores it and tiles with the processor's own `max_patches`. This sets the
   processor's max_patches from MAX_NUM when the template binds its processor.
2. DeepSpeed on several CPU processes. With no GPU, accelerate's PartialState lets DeepSpeed set up
   the process group but records no backend, so it reports one process: transformers then sizes
   DeepSpeed's train_batch_size for one process and DeepSpeed refuses to start ("train_batch_size is
   not equal to micro_batch_per_gpu * gradient_acc_step * world_size 4 != 4 * 1 * 2"). This gives the
   state the process group's real size and ranks. Only that case is touched: with GPUs accelerate is right.

3. `ID@split` dataset names (internvl_kit/train/split_views.py): one split of a hub dataset. The views the
   command line names are registered before swift loads its data.

train.py, infer.py and serve add the plugin only when one of these applies.
"""
import os
import sys

from swift.template.templates.internvl import InternvlhfTemplate

_original_init_env_args = InternvlhfTemplate.init_env_args


def _init_env_args(self) -> None:
    _original_init_env_args(self)
    value = os.environ.get("MAX_NUM")
    if value:
        self.processor.image_processor.max_patches = int(value)


if getattr(InternvlhfTemplate.init_env_args, "__module__", None) != __name__:
    InternvlhfTemplate.init_env_args = _init_env_args


def _patch_cpu_deepspeed_world() -> None:
    import torch
    from accelerate.state import DistributedType, PartialState

    original = PartialState.__init__
    if getattr(original, "__module__", None) == __name__:
        return

    def __init__(self, cpu: bool = False, **kwargs) -> None:
        original(self, cpu=cpu, **kwargs)
        if (self.distributed_type == DistributedType.DEEPSPEED and self.backend is None
                and torch.distributed.is_initialized() and torch.distributed.get_world_size() != self.num_processes):
            self.backend = torch.distributed.get_backend()
            self.num_processes = torch.distributed.get_world_size()
            self.process_index = torch.distributed.get_rank()
            self.local_process_index = int(os.environ.get("LOCAL_RANK", self.process_index))

    __init__.__module__ = __name__
    PartialState.__init__ = __init__


if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "" or not __import__("torch").cuda.is_available():
    _patch_cpu_deepspeed_world()


def _register_split_views() -> None:
    from internvl_kit.train import split_views
    split_views.register(split_views.from_argv(sys.argv))


_register_split_views()

