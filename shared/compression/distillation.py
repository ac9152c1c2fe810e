"""Knowledge distillation (Hinton et al. 2015), as the keras-io "Knowledge Distillation"
example trains it: the student's loss is

    alpha * hard_loss(y, student) + (1 - alpha) * T**2 * KL(softmax(t / T) || softmax(s / T))

where t and s are the teacher's and the student's logits and T the temperature. Here
the student is any compiled Keras classifier: `attach` replaces its `compute_loss`, so
the domain's own training loop (data, callbacks, checkpoints) trains it, and the saved
student is a plain model. Validation reports the hard loss, as in the keras-io recipe.

Outputs may be softmax probabilities (zoo classifiers), sigmoid probabilities or a
single binary logit (finance's scorers); each is turned into class logits first.
"""

from __future__ import annotations

import keras
from keras import ops

from shared.errors import UserError

EPSILON = 1e-7


def output_kind(model: keras.Model) -> str:
    """How to read `model`'s output: "softmax", "sigmoid" or "logits" (its last layer's
    activation; a Softmax or Activation layer counts too)."""
    if len(model.outputs) != 1:
        raise UserError(
            f"distillation needs a model with one output; {model.name} has {len(model.outputs)}"
        )
    layer = model.outputs[0]._keras_history.operation
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or str(activation or "")
    if isinstance(layer, keras.layers.Softmax) or name == "softmax":
        return "softmax"
    if name == "sigmoid":
        return "sigmoid"
    return "logits"


def num_outputs(model: keras.Model) -> int:
    return int(model.outputs[0].shape[-1])


def check_pair(teacher: keras.Model, student: keras.Model) -> None:
    """The teacher scores the same classes from the same inputs as the student."""
    t_classes, s_classes = num_outputs(teacher), num_outputs(student)
    if t_classes != s_classes:
        raise UserError(
            f"the teacher's outputs ({t_classes} classes) do not match the student's "
            f"({s_classes}); distil from a run trained on the same classes"
        )
    t_inputs = [tuple(i.shape[1:]) for i in teacher.inputs]
    s_inputs = [tuple(i.shape[1:]) for i in student.inputs]
    if t_inputs != s_inputs:
        raise UserError(
            f"the teacher takes inputs of shape {t_inputs}, the student {s_inputs}; "
            "distil from a run trained on the same data"
        )


def class_logits(outputs, kind: str):
    """Per-class logits (up to a constant per row) from a model's outputs."""
    outputs = ops.cast(outputs, "float32")
    if kind == "softmax":
        return ops.log(ops.clip(outputs, EPSILON, 1.0))
    if kind == "sigmoid":
        p = ops.clip(outputs, EPSILON, 1.0 - EPSILON)
        if outputs.shape[-1] == 1:
            return ops.concatenate([ops.log(1.0 - p), ops.log(p)], axis=-1)
        return ops.log(p)
    if outputs.shape[-1] == 1:  # one binary logit z: the classes' logits are (0, z)
        return ops.concatenate([ops.zeros_like(outputs), outputs], axis=-1)
    return outputs


def soft_loss(teacher_logits, student_logits, temperature: float):
    """T**2 * KL(softmax(t / T) || softmax(s / T)), averaged over the batch."""
    t = ops.softmax(teacher_logits / temperature, axis=-1)
    s = ops.softmax(student_logits / temperature, axis=-1)
    kl = keras.losses.KLDivergence(reduction="sum_over_batch_size")(t, s)
    return kl * temperature**2


def combined_loss(hard, soft, alpha: float):
    """The keras-io weighting: alpha on the hard-label loss, 1 - alpha on distillation."""
    return alpha * hard + (1.0 - alpha) * soft


def attach(
    student: keras.Model, teacher: keras.Model, *, alpha: float = 0.1, temperature: float = 4.0
) -> keras.Model:
    """Make the compiled `student` train on the distillation loss from `teacher` (frozen).

    The student keeps its compiled loss and metrics (the hard part of the loss and what
    validation reports); call before `fit`, after `compile`.
    """
    if not 0 <= alpha <= 1:
        raise UserError(f"distillation alpha must be between 0 and 1, got {alpha}")
    if temperature <= 0:
        raise UserError(f"distillation temperature must be positive, got {temperature}")
    check_pair(teacher, student)
    teacher.trainable = False
    hard_loss = student.compute_loss  # the compiled loss, bound before it is replaced
    teacher_kind, student_kind = output_kind(teacher), output_kind(student)

    def compute_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = hard_loss(x, y, y_pred, sample_weight, training=training)
        if not training:
            return hard
        teacher_logits = class_logits(teacher(x, training=False), teacher_kind)
        soft = soft_loss(teacher_logits, class_logits(y_pred, student_kind), temperature)
        return combined_loss(hard, soft, alpha)

    student.compute_loss = compute_loss
    student.distillation = {"alpha": alpha, "temperature": temperature}
    return student
