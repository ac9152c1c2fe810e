"""The model zoo: every architecture built by name through `build_model`.

Importing this package registers every model: the builder modules are imported
here, after `registry`, so `MODELS` is complete however the zoo is imported.
"""

from shared.zoo.registry import (
    MODALITIES,
    MODELS,
    SPECS,
    ModelSpec,
    build_model,
    count_weight_layers,
    model_info,
    model_options,
    model_spec,
    register_model,
    training_loss,
)

# Imported for their registrations.
from shared.zoo import (  # noqa: E402, F401  # isort: skip
    alexnet,
    autoencoder,
    bert,
    capsnet,
    dbn,
    dcgan,
    detection_losses,
    fcos,
    gpt,
    lenet,
    ngram_classifier,
    resnet,
    resnet3d,
    rnn_classifier,
    rnn_seq2seq,
    small_cnn,
    stylegan,
    tabular,
    transformer_seq2seq,
    unet,
    vae,
    vgg,
)
from shared.zoo import policy_nets  # noqa: E402, F401  # isort: skip
from shared.zoo.gan import GAN  # noqa: E402

__all__ = [
    "GAN",
    "MODALITIES",
    "MODELS",
    "SPECS",
    "ModelSpec",
    "build_model",
    "count_weight_layers",
    "model_info",
    "model_options",
    "model_spec",
    "register_model",
    "training_loss",
]
