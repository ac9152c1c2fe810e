"""The nlp config: every key an `nlp` command accepts, with types and defaults.

One schema for the three tasks (`task: classify | translate | lm`); a task reads the
sections it needs (`tokenizer` for classify, `sequence` and `generate` for translate
and lm) and ignores the others, as a KerasHub task ignores a preprocessor's unused
arguments.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from shared.config import ConfigModel
from shared.training import RuntimeConfig, TrainConfig


class NLPModelConfig(ConfigModel):
    """`model.name` picks a zoo text model; any other key is one of its options."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, protected_namespaces=())

    name: str = "ngram_classifier"

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NLPDataConfig(ConfigModel):
    source: str = "builtin:sms-spam"
    text_column: str | None = Field(
        None, description="the text, or translate's source side (default: the builtin's)"
    )
    target: str | None = Field(None, description="the label column (default: the builtin's)")
    translation_column: str | None = Field(
        None, description="translate: the target-language side (default: the builtin's)"
    )
    delimiter: str | None = Field(None, description="force the separator (default: sniffed)")
    header: bool = Field(True, description="false: no header row (give data.columns)")
    columns: list[str] | None = Field(None, description="column names of a headerless file")
    encoding: str | None = Field(None, description="force the encoding (default: detected)")
    max_examples: int | None = Field(
        None, ge=10, description="use only the first N rows (pairs) after cleaning"
    )
    validation_split: float = Field(0.1, gt=0, lt=1)
    test_split: float = Field(0.2, gt=0, lt=1)
    class_weight: Literal["none", "balanced", "sqrt"] = Field(
        "none",
        description="classify: weight each training text's loss by its class; balanced: "
        "n / (classes * count), sqrt: its square root (rare classes count more)",
    )


class TokenizerConfig(ConfigModel):
    """classify: Keras `TextVectorization`, adapted on the training split only.

    Sequence models (rnn, bert) read `kind`, `vocabulary_size`, `sequence_length` and
    `lowercase`; the bag-of-n-gram models read the others.
    """

    kind: Literal["auto", "wordpiece", "words"] = Field(
        "auto",
        description="sequence models: wordpiece (KerasHub, tensorflow_text ops) or words "
        "(TextVectorization, core TF); auto: wordpiece for bert, words for rnn",
    )
    vocabulary_size: int = Field(8_000, ge=20, description="sequence models: tokens kept")
    sequence_length: int = Field(
        64, ge=4, description="sequence models: tokens per text (longer texts are cut)"
    )
    lowercase: bool = Field(True, description="sequence models: lower-case before tokenizing")

    max_tokens: int = Field(20_000, ge=100, description="vocabulary size, n-grams included")
    ngrams: int = Field(2, ge=1, le=3, description="word n-grams up to this length")
    punctuation: Literal["split", "strip"] = Field(
        "split",
        description="word n-grams: punctuation separates words (split, as scikit-learn's "
        "tokenizer does) or is deleted, joining what it separated (strip, Keras's default)",
    )
    output_mode: Literal["tf_idf", "multi_hot", "count"] = "tf_idf"
    char_ngrams: int = Field(
        0, ge=0, le=6, description="also character n-grams of 1 to this length (0: none)"
    )
    char_max_tokens: int = Field(50_000, ge=100, description="character n-grams kept")
    normalize: bool = Field(False, description="L2-normalise each n-gram family's vector")


class SequenceConfig(ConfigModel):
    """translate and lm: how text becomes token ids (vocabulary from the training split)."""

    unit: Literal["word", "character"] = Field(
        "word", description="word: lower-cased words and punctuation; character: every char"
    )
    vocabulary_size: int = Field(8_000, ge=20, description="tokens kept, specials included")
    length: int = Field(
        24, ge=4, description="tokens per sequence (translate: per side; lm: the context)"
    )


class GenerateConfig(ConfigModel):
    """Decoding for translate and lm (predict, evaluate and the export)."""

    strategy: Literal["greedy", "beam", "sample"] = "greedy"
    beam_width: int = Field(4, ge=1, le=16)
    max_new_tokens: int = Field(40, ge=1, description="lm: tokens generated after the prompt")
    temperature: float = Field(1.0, gt=0)
    top_k: int | None = Field(None, ge=1, description="sample: keep the k likeliest tokens")
    top_p: float | None = Field(None, gt=0, le=1, description="sample: nucleus mass to keep")
    seed: int | None = Field(None, description="sample: fixed seed (default: the run's)")


class PretrainConfig(ConfigModel):
    """classify with bert: masked-LM pretraining of the encoder before fine-tuning, and
    `--init-from` (a finished run of the same model, or a local KerasHub BERT preset)."""

    epochs: int = Field(0, ge=0, description="masked-LM epochs before fine-tuning (0: none)")
    source: str | None = Field(
        None,
        description="unlabeled text, one text per line (text:/txt:/csv:/jsonl:); "
        "default: the training split's texts",
    )
    mask_rate: float = Field(0.15, gt=0, lt=1, description="share of tokens masked")
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(
        0.0, ge=0, description="AdamW's decoupled weight decay (0: plain Adam)"
    )
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="cosine: decay to zero over the pretraining epochs"
    )
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up first (cosine only)")
    batch_size: int = Field(32, ge=1)
    max_texts: int | None = Field(None, ge=10, description="use only the first N source texts")
    init_from: str | None = Field(
        None, description="start from a finished run's encoder or a KerasHub preset directory"
    )


class NLPConfig(ConfigModel):
    task: Literal["classify", "translate", "lm"] = "classify"
    model: NLPModelConfig = NLPModelConfig()
    data: NLPDataConfig = NLPDataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    pretrain: PretrainConfig = PretrainConfig()
    sequence: SequenceConfig = SequenceConfig()
    generate: GenerateConfig = GenerateConfig()
    train: TrainConfig = TrainConfig(epochs=10, batch_size=64, learning_rate=0.003)
    runtime: RuntimeConfig = RuntimeConfig()
