"""Micro cross-validation (MCV): batch-level cross-validation of every update.

Thesis: "Batch-level cross-validation" (chapter 3). `MCVModel` wraps any Keras
model with a train step that splits each batch into a training and a
validation half and checks or searches the learning rate on the validation
half (or, fed by `PairedBatches`, trains on every mini-batch and validates it
on another random one, as the thesis does); `MCVScheduler` makes the epoch decisions; `MCVStopping` is the thesis's
stopping rule. Pure rules live in `rules`, candidate lists in `candidates`,
Table 4.1 costs in `cost`.

Example:

```python
from keras_autolr.runtime.mcv import MCVModel, MCVStopping
model = MCVModel(inner, method="method2", alpha=0.5)
model.compile(optimizer, loss)
model.fit(x, y, batch_size=256, epochs=50, callbacks=[MCVStopping(patience=5)])
```
"""

from keras_autolr.runtime.mcv.callbacks import MCVScheduler, MCVStopping
from keras_autolr.runtime.mcv.candidates import FACTORS, THESIS_LR_LIST, CandidateError, candidate_list
from keras_autolr.runtime.mcv.cost import run_cost, step_cost
from keras_autolr.runtime.mcv.model import METHODS, MCVError, MCVModel
from keras_autolr.runtime.mcv.data import PairedBatches

__all__ = [
    "MCVModel", "MCVScheduler", "MCVStopping", "MCVError", "CandidateError", "PairedBatches",
    "METHODS", "FACTORS", "THESIS_LR_LIST", "candidate_list", "step_cost", "run_cost",
]
