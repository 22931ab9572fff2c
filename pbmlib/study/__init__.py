"""Studies (numpy tier): protect a data set under several conditions, audit, train through a learner, decide.

Importing this package never loads Keras or TensorFlow: training goes through the learner the
caller passes (:class:`pbmlib.learn.learner.KerasLearner`).
"""

from .conditions import Condition, StudyPlan, as_condition, schemes_from_specs, study_from_parameters
from .core import MODEL_MEMBERSHIP_FIELDS, ROW_FIELDS, STUDY_ROW_FIELDS, TARGET_FIELDS, run_study
from .settings import StudySettings, TrainingSettings

__all__ = ["Condition", "StudyPlan", "StudySettings", "TrainingSettings", "as_condition", "schemes_from_specs",
           "study_from_parameters", "run_study", "STUDY_ROW_FIELDS", "MODEL_MEMBERSHIP_FIELDS", "TARGET_FIELDS",
           "ROW_FIELDS"]
