"""Remote code of the tiny `internvl_chat` checkpoints (the route of the official OpenGVLab checkpoints).

The official InternVL3 / InternVL3.5 repositories ship their model as Python files loaded through
`trust_remote_code`. These modules are the project's own minimal implementation of the same public
interface (class, config and attribute names, forward / generate / chat signatures, the timm and einops
imports, a PreTrainedModel without GenerationMixin), so that swift and transformers meet the same shape
and the same quirks as with a real checkpoint. `tiny_model.build_chat` copies them next to the weights.
"""
