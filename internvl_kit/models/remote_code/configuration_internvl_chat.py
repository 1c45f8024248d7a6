"""Config of InternVLChatModel: a vision config, an LLM config chosen by its architecture, and the
InternVL fields the official checkpoints carry (template, tiling, pixel-shuffle version)."""
from transformers import LlamaConfig, Qwen2Config, Qwen3Config
from transformers.configuration_utils import PretrainedConfig

from .configuration_intern_vit import InternVisionConfig

LLM_CONFIGS = {"Qwen2ForCausalLM": Qwen2Config, "Qwen3ForCausalLM": Qwen3Config, "LlamaForCausalLM": LlamaConfig}


class InternVLChatConfig(PretrainedConfig):
    model_type = "internvl_chat"
    is_composition = True

    def __init__(self, vision_config=None, llm_config=None, use_backbone_lora=0, use_llm_lora=0, select_layer=-1,
                 force_image_size=None, downsample_ratio=0.5, template=None, dynamic_image_size=False,
                 use_thumbnail=False, ps_version="v1", min_dynamic_patch=1, max_dynamic_patch=6, **kwargs):
        super().__init__(**kwargs)
        # Constructible with no arguments: transformers builds a default instance to diff against when saving.
        if isinstance(vision_config, InternVisionConfig):
            vision_config = vision_config.to_dict()
        if isinstance(llm_config, PretrainedConfig):
            llm_config = llm_config.to_dict()
        vision_config = dict(vision_config or {})
        llm_config = dict(llm_config or {"architectures": ["Qwen2ForCausalLM"]})
        self.vision_config = InternVisionConfig(**vision_config)
        arch = (llm_config.get("architectures") or ["Qwen2ForCausalLM"])[0]
        if arch not in LLM_CONFIGS:
            raise ValueError(f"unsupported LLM architecture {arch}; known: {', '.join(LLM_CONFIGS)}")
        llm_config.pop("model_type", None)
        self.llm_config = LLM_CONFIGS[arch](**llm_config)
        self.use_backbone_lora = use_backbone_lora
        self.use_llm_lora = use_llm_lora
        self.select_layer = select_layer
        self.force_image_size = force_image_size
        self.downsample_ratio = downsample_ratio
        self.template = template
        self.dynamic_image_size = dynamic_image_size
        self.use_thumbnail = use_thumbnail
        self.ps_version = ps_version
        self.min_dynamic_patch = min_dynamic_patch
        self.max_dynamic_patch = max_dynamic_patch

