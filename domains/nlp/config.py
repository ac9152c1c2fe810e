"""The nlp config: every key an `nlp` command accepts, with types and defaults."""

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
    text_column: str | None = Field(None, description="the text (default: the builtin's)")
    target: str | None = Field(None, description="the label column (default: the builtin's)")
    delimiter: str | None = Field(None, description="force the separator (default: sniffed)")
    header: bool = Field(True, description="false: no header row (give data.columns)")
    columns: list[str] | None = Field(None, description="column names of a headerless file")
    encoding: str | None = Field(None, description="force the encoding (default: detected)")
    validation_split: float = Field(0.1, gt=0, lt=1)
    test_split: float = Field(0.2, gt=0, lt=1)


class TokenizerConfig(ConfigModel):
    """Keras `TextVectorization`, adapted on the training split only."""

    max_tokens: int = Field(20_000, ge=100, description="vocabulary size, n-grams included")
    ngrams: int = Field(2, ge=1, le=3, description="word n-grams up to this length")
    output_mode: Literal["tf_idf", "multi_hot", "count"] = "tf_idf"


class NLPConfig(ConfigModel):
    task: Literal["classify"] = "classify"
    model: NLPModelConfig = NLPModelConfig()
    data: NLPDataConfig = NLPDataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    train: TrainConfig = TrainConfig(epochs=10, batch_size=64, learning_rate=0.003)
    runtime: RuntimeConfig = RuntimeConfig()
