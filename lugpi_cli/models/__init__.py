"""Models: the multimodal fusion teacher, the text-only student, the image-only classifier, ARMADA's aligner.

Every model's ``forward(batch)`` takes a dict (``input_ids``,
``attention_mask``, optional ``token_type_ids``, ``image_tokens`` (B, P, D),
optional ``image_mask`` (B, P)), reads what it needs, and returns
:class:`ModelOutput` ``(logits, embedding, extra)``; ``embedding`` is what the
classification layer reads (e_T for a teacher, e_S for the student); ``extra``
holds model-specific tensors (ARMADA: ``logits_aux``, ``manifold``).
"""

from lugpi_cli.models.armada import ArmadaTeacher
from lugpi_cli.models.common import ModelOutput, read_model_config, xavier_init_
from lugpi_cli.models.image_classifier import ImageClassifier
from lugpi_cli.models.student import TextClassifier, find_classifier_layer
from lugpi_cli.models.teacher import FusionTeacher, build_teacher, load_model

__all__ = [
    "ArmadaTeacher",
    "FusionTeacher",
    "ImageClassifier",
    "ModelOutput",
    "TextClassifier",
    "build_teacher",
    "find_classifier_layer",
    "load_model",
    "read_model_config",
    "xavier_init_",
]
