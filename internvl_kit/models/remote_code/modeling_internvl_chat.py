"""InternVLChatModel: InternViT -> pixel shuffle -> `mlp1` -> a causal LLM, with the official interface.

Like the official class it derives from PreTrainedModel only (no GenerationMixin: in transformers 5 it
has no `prepare_inputs_for_generation`), replaces `<IMG_CONTEXT>` embeddings by image features, and
offers `forward(pixel_values, input_ids, ..., image_flags, labels)`, `generate(pixel_values, input_ids,
attention_mask, **kw)` and `chat(tokenizer, pixel_values, question, generation_config)`.
"""
import torch
from torch import nn
from torch.nn import CrossEntropyLoss
from transformers import LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import PreTrainedModel

from .configuration_internvl_chat import InternVLChatConfig
from .modeling_intern_vit import InternVisionModel

LLM_CLASSES = {"Qwen2ForCausalLM": Qwen2ForCausalLM, "Qwen3ForCausalLM": Qwen3ForCausalLM,
               "LlamaForCausalLM": LlamaForCausalLM}
# The conversation templates chat() knows: ChatML with the template's default system message.
SYSTEM_MESSAGES = {
    "internvl2_5": "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。",
}
IMG_START_TOKEN, IMG_END_TOKEN, IMG_CONTEXT_TOKEN = "<img>", "</img>", "<IMG_CONTEXT>"
SEP = "<|im_end|>"


class InternVLChatModel(PreTrainedModel):
    config_class = InternVLChatConfig
    main_input_name = "pixel_values"
    base_model_prefix = "language_model"
    _no_split_modules = ["InternVisionModel", "Qwen2DecoderLayer", "Qwen3DecoderLayer", "LlamaDecoderLayer"]
    _supports_flash_attn_2 = True
    _supports_sdpa = True
    supports_gradient_checkpointing = True

    def __init__(self, config: InternVLChatConfig, vision_model=None, language_model=None):
        super().__init__(config)
        image_size = config.force_image_size or config.vision_config.image_size
        patch_size = config.vision_config.patch_size
        self.patch_size = patch_size
        self.select_layer = config.select_layer
        self.template = config.template
        self.num_image_token = int((image_size // patch_size) ** 2 * (config.downsample_ratio ** 2))
        self.downsample_ratio = config.downsample_ratio
        self.ps_version = config.ps_version
        self.llm_arch_name = config.llm_config.architectures[0]
        self.vision_model = vision_model or InternVisionModel(config.vision_config)
        if language_model is None:
            if self.llm_arch_name not in LLM_CLASSES:
                raise NotImplementedError(f"{self.llm_arch_name} is not implemented")
            language_model = LLM_CLASSES[self.llm_arch_name](config.llm_config)
        self.language_model = language_model
        vit_hidden = config.vision_config.hidden_size * int(1 / self.downsample_ratio) ** 2
        llm_hidden = config.llm_config.hidden_size
        self.mlp1 = nn.Sequential(nn.LayerNorm(vit_hidden), nn.Linear(vit_hidden, llm_hidden), nn.GELU(),
                                  nn.Linear(llm_hidden, llm_hidden))
        self.img_context_token_id = None
        self.system_message = getattr(config, "system_message", None) or SYSTEM_MESSAGES.get(self.template, "")
        self.post_init()

    def _init_weights(self, module):
        std = self.config.llm_config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(0.0, std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def pixel_shuffle(self, x, scale_factor=0.5):
        n, w, h, c = x.size()
        x = x.view(n, w, int(h * scale_factor), int(c / scale_factor))
        x = x.permute(0, 2, 1, 3).contiguous()
        x = x.view(n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor * scale_factor)))
        if self.ps_version != "v1":        # v1 leaves the grid transposed, as the first checkpoints did
            x = x.permute(0, 2, 1, 3).contiguous()
        return x

    def extract_feature(self, pixel_values):
        if self.select_layer == -1:
            vit_embeds = self.vision_model(pixel_values=pixel_values, output_hidden_states=False,
                                           return_dict=True).last_hidden_state
        else:
            vit_embeds = self.vision_model(pixel_values=pixel_values, output_hidden_states=True,
                                           return_dict=True).hidden_states[self.select_layer]
        vit_embeds = vit_embeds[:, 1:, :]
        side = int(vit_embeds.shape[1] ** 0.5)
        vit_embeds = vit_embeds.reshape(vit_embeds.shape[0], side, side, -1)
        vit_embeds = self.pixel_shuffle(vit_embeds, scale_factor=self.downsample_ratio)
        vit_embeds = vit_embeds.reshape(vit_embeds.shape[0], -1, vit_embeds.shape[-1])
        return self.mlp1(vit_embeds)

    def _merge_image_features(self, input_ids, input_embeds, vit_embeds):
        batch, length, dim = input_embeds.shape
        flat = input_embeds.reshape(batch * length, dim)
        selected = input_ids.reshape(batch * length) == self.img_context_token_id
        flat[selected] = flat[selected] * 0.0 + vit_embeds.reshape(-1, dim).to(flat.dtype)
        return flat.reshape(batch, length, dim)

    def forward(self, pixel_values, input_ids=None, attention_mask=None, position_ids=None, image_flags=None,
                past_key_values=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        input_embeds = self.language_model.get_input_embeddings()(input_ids).clone()
        vit_embeds = self.extract_feature(pixel_values)
        if image_flags is not None:
            vit_embeds = vit_embeds[image_flags.squeeze(-1) == 1]
        input_embeds = self._merge_image_features(input_ids, input_embeds, vit_embeds)
        outputs = self.language_model(inputs_embeds=input_embeds, attention_mask=attention_mask,
                                      position_ids=position_ids, past_key_values=past_key_values,
                                      use_cache=use_cache, output_attentions=output_attentions,
                                      output_hidden_states=output_hidden_states, return_dict=True)
        logits = outputs.logits
        loss = None
        if labels is not None:
            shift_logits = logits[..., :-1, :].contiguous().view(-1, logits.shape[-1])
            shift_labels = labels[..., 1:].contiguous().view(-1).to(shift_logits.device)
            loss = CrossEntropyLoss()(shift_logits, shift_labels)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=outputs.past_key_values,
                                      hidden_states=outputs.hidden_states, attentions=outputs.attentions)

    @torch.no_grad()
    def generate(self, pixel_values=None, input_ids=None, attention_mask=None, visual_features=None,
                 generation_config=None, output_hidden_states=None, **generate_kwargs):
        input_embeds = self.language_model.get_input_embeddings()(input_ids)
        if pixel_values is not None or visual_features is not None:
            if self.img_context_token_id is None:
                raise ValueError("set model.img_context_token_id (the id of <IMG_CONTEXT>) before generating")
            vit_embeds = visual_features if visual_features is not None else self.extract_feature(pixel_values)
            input_embeds = self._merge_image_features(input_ids, input_embeds, vit_embeds)
        return self.language_model.generate(inputs_embeds=input_embeds, attention_mask=attention_mask,
                                            generation_config=generation_config,
                                            output_hidden_states=output_hidden_states, use_cache=True,
                                            **generate_kwargs)

    def _prompt(self, history, question):
        parts = [f"<|im_start|>system\n{self.system_message}{SEP}\n"] if self.system_message else []
        for old_question, old_answer in history:
            parts.append(f"<|im_start|>user\n{old_question}{SEP}\n<|im_start|>assistant\n{old_answer}{SEP}\n")
        parts.append(f"<|im_start|>user\n{question}{SEP}\n<|im_start|>assistant\n")
        return "".join(parts)

    def chat(self, tokenizer, pixel_values, question, generation_config, history=None, return_history=False,
             num_patches_list=None, IMG_START_TOKEN=IMG_START_TOKEN, IMG_END_TOKEN=IMG_END_TOKEN,
             IMG_CONTEXT_TOKEN=IMG_CONTEXT_TOKEN, verbose=False):
        if history is None and pixel_values is not None and "<image>" not in question:
            question = "<image>\n" + question
        if num_patches_list is None:
            num_patches_list = [pixel_values.shape[0]] if pixel_values is not None else []
        if pixel_values is not None and len(pixel_values) != sum(num_patches_list):
            raise ValueError(f"pixel_values has {len(pixel_values)} tiles, num_patches_list {sum(num_patches_list)}")
        self.img_context_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)
        history = [] if history is None else history
        query = self._prompt(history, question)
        for num_patches in num_patches_list:
            tokens = IMG_START_TOKEN + IMG_CONTEXT_TOKEN * self.num_image_token * num_patches + IMG_END_TOKEN
            query = query.replace("<image>", tokens, 1)
        inputs = tokenizer(query, return_tensors="pt")
        generation_config = dict(generation_config, eos_token_id=tokenizer.convert_tokens_to_ids(SEP))
        if pixel_values is not None:
            pixel_values = pixel_values.to(self.device, self.vision_model.dtype)
        output = self.generate(pixel_values=pixel_values, input_ids=inputs["input_ids"].to(self.device),
                               attention_mask=inputs["attention_mask"].to(self.device), **generation_config)
        response = tokenizer.batch_decode(output, skip_special_tokens=True)[0].split(SEP)[0].strip()
        history.append((question, response))
        return (response, history) if return_history else response
