"""The config layer: the typed schema of a job (`schema`), the plugin groups whose options are
modules and their interfaces (`plugins`: technique, protocol), a job's validation (`validate`) and
the files it names (`files`). Everything above reads a validated `XltConfig`, never raw YAML."""
from xlt.config.files import CONF_DIR, SAMPLE_DIR, data_dir_of, task_preset
from xlt.config.resolvers import register_resolvers
from xlt.config.schema import (
                               ModelConfig,
                               ProtocolConfig,
                               TaskConfig,
                               TechniqueConfig,
                               TinyShape,
                               TrainingDefaults,
                               XltConfig,
                               config_hash,
                               job_fields,
                               register_schema,
)
from xlt.config.validate import suggest, validate

register_resolvers()  # ${xlt.unique:} in conf/config.yaml resolves in every process that imports xlt

__all__ = ["CONF_DIR", "SAMPLE_DIR", "ModelConfig", "ProtocolConfig", "TaskConfig", "TechniqueConfig", "TinyShape",
           "TrainingDefaults", "XltConfig", "config_hash", "data_dir_of", "job_fields", "register_schema", "suggest",
           "task_preset", "validate"]
