"""The config layer: the typed schema of a job (`schema`), its validation (`validate`) and
the files it names (`files`). Everything above reads a validated `XltConfig`, never raw YAML."""
from xlt.config.files import CONF_DIR, SAMPLE_DIR, data_dir_of, task_preset
from xlt.config.resolvers import register_resolvers
from xlt.config.schema import (
                               ModelConfig,
                               TaskConfig,
                               TechniqueConfig,
                               TinyShape,
                               XltConfig,
                               config_hash,
                               register_schema,
)
from xlt.config.validate import suggest, technique_module, validate

register_resolvers()  # ${xlt.unique:} in conf/config.yaml resolves in every process that imports xlt

__all__ = ["CONF_DIR", "SAMPLE_DIR", "ModelConfig", "TaskConfig", "TechniqueConfig", "TinyShape", "XltConfig",
           "config_hash", "data_dir_of", "register_schema", "suggest",
           "task_preset", "technique_module", "validate"]
