"""InternViT: a ViT with a class token, position embeddings interpolated to the input grid, layer scale
and stochastic depth (timm's DropPath), as the official vision tower is laid out."""
import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import rearrange
from timm.models.layers import DropPath
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.modeling_utils import PreTrainedModel

from .configuration_intern_vit import InternVisionConfig

has_flash_attn = False      # the official module exports this flag; attention here is torch's sdpa


class InternRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        dtype = hidden_states.dtype
        x = hidden_states.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


NORM2FN = {"rms_norm": InternRMSNorm, "layer_norm": nn.LayerNorm}


class InternVisionEmbeddings(nn.Module):
    def __init__(self, config: InternVisionConfig):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.image_size = config.image_size
        self.patch_size = config.patch_size
        self.class_embedding = nn.Parameter(torch.randn(1, 1, self.embed_dim))
        self.patch_embedding = nn.Conv2d(config.num_channels, self.embed_dim, kernel_size=self.patch_size,
                                         stride=self.patch_size)
        self.num_patches = (self.image_size // self.patch_size) ** 2
        self.num_positions = self.num_patches + 1
        self.position_embedding = nn.Parameter(torch.randn(1, self.num_positions, self.embed_dim))

    def _grid_position_embedding(self, height, width, dtype):
        side = self.image_size // self.patch_size
        grid = self.position_embedding[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if (height, width) != (side, side):
            grid = F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)
        return rearrange(grid, "b c h w -> b (h w) c").to(dtype)

    def forward(self, pixel_values):
        dtype = self.patch_embedding.weight.dtype
        patches = self.patch_embedding(pixel_values.to(dtype))
        batch, _, height, width = patches.shape
        patches = rearrange(patches, "b c h w -> b (h w) c")
        cls = self.class_embedding.expand(batch, 1, -1).to(dtype)
        pos = torch.cat([self.position_embedding[:, :1].to(dtype),
                         self._grid_position_embedding(height, width, dtype)], dim=1)
        return torch.cat([cls, patches], dim=1) + pos


class InternAttention(nn.Module):
    def __init__(self, config: InternVisionConfig):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        self.qkv = nn.Linear(self.embed_dim, 3 * self.embed_dim, bias=config.qkv_bias)
        self.attn_drop = config.attention_dropout
        self.proj_drop = nn.Dropout(config.dropout)
        self.qk_normalization = config.qk_normalization
        if self.qk_normalization:
            self.q_norm = InternRMSNorm(self.embed_dim, eps=config.layer_norm_eps)
            self.k_norm = InternRMSNorm(self.embed_dim, eps=config.layer_norm_eps)
        self.proj = nn.Linear(self.embed_dim, self.embed_dim)

    def forward(self, hidden_states):
        q, k, v = rearrange(self.qkv(hidden_states), "b n (three h d) -> three b h n d",
                            three=3, h=self.num_heads)
        if self.qk_normalization:
            q = rearrange(self.q_norm(rearrange(q, "b h n d -> b n (h d)")), "b n (h d) -> b h n d", h=self.num_heads)
            k = rearrange(self.k_norm(rearrange(k, "b h n d -> b n (h d)")), "b n (h d) -> b h n d", h=self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(rearrange(out, "b h n d -> b n (h d)")))


class InternMLP(nn.Module):
    def __init__(self, config: InternVisionConfig):
        super().__init__()
        self.act = ACT2FN[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states):
        return self.fc2(self.act(self.fc1(hidden_states)))


class InternVisionEncoderLayer(nn.Module):
    def __init__(self, config: InternVisionConfig, drop_path_rate: float):
        super().__init__()
        dim = config.hidden_size
        self.attn = InternAttention(config)
        self.mlp = InternMLP(config)
        self.norm1 = NORM2FN[config.norm_type](dim, eps=config.layer_norm_eps)
        self.norm2 = NORM2FN[config.norm_type](dim, eps=config.layer_norm_eps)
        self.ls1 = nn.Parameter(config.initializer_factor * torch.ones(dim))
        self.ls2 = nn.Parameter(config.initializer_factor * torch.ones(dim))
        self.drop_path1 = DropPath(drop_path_rate)
        self.drop_path2 = DropPath(drop_path_rate)

    def forward(self, hidden_states):
        hidden_states = hidden_states + self.drop_path1(self.attn(self.norm1(hidden_states)) * self.ls1)
        return hidden_states + self.drop_path2(self.mlp(self.norm2(hidden_states)) * self.ls2)


class InternVisionEncoder(nn.Module):
    def __init__(self, config: InternVisionConfig):
        super().__init__()
        n = config.num_hidden_layers
        # stochastic depth grows linearly over the layers (plain floats: this also runs on the meta device)
        rates = [config.drop_path_rate * i / max(n - 1, 1) for i in range(n)]
        self.layers = nn.ModuleList([InternVisionEncoderLayer(config, rates[i]) for i in range(n)])
        self.gradient_checkpointing = True

    def forward(self, inputs_embeds, output_hidden_states=False, return_dict=True):
        hidden_states = inputs_embeds
        all_states = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                hidden_states = torch.utils.checkpoint.checkpoint(layer, hidden_states, use_reentrant=False)
            else:
                hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_states = all_states + (hidden_states,)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_states)


class InternVisionModel(PreTrainedModel):
    main_input_name = "pixel_values"
    config_class = InternVisionConfig
    _no_split_modules = ["InternVisionEncoderLayer"]
    _supports_sdpa = True

    def __init__(self, config: InternVisionConfig):
        super().__init__(config)
        self.config = config
        self.embeddings = InternVisionEmbeddings(config)
        self.encoder = InternVisionEncoder(config)
        self.post_init()

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()
        elif isinstance(module, InternVisionEmbeddings):
            module.class_embedding.data.normal_(0.0, std)
            module.position_embedding.data.normal_(0.0, std)

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, pixel_values=None, output_hidden_states=None, return_dict=None, pixel_embeds=None):
        if pixel_values is None and pixel_embeds is None:
            raise ValueError("InternVisionModel needs pixel_values or pixel_embeds")
        hidden_states = pixel_embeds if pixel_embeds is not None else self.embeddings(pixel_values)
        encoded = self.encoder(hidden_states, output_hidden_states=bool(output_hidden_states))
        last = encoded.last_hidden_state
        return BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=last[:, 0, :],
                                          hidden_states=encoded.hidden_states)
