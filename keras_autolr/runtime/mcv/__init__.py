"""Micro cross-validation (MCV): batch-level cross-validation of every update.

Thesis: "Batch-level cross-validation" (chapter 3). `MCVModel` wraps any Keras
model with a train step that splits each batch into a training and a
validation half and checks or searches the learning rate on the validation
half (or, fed by `PairedBatches`, trains on every mini-batch and validates it
on another random one, as the thesis does). The algorithm is a strategy
object (`Discard`, `Voting`, `Method1`, `Method2`, `Method3`, in
`strategies`); `MCVScheduler` makes the epoch decisions; `MCVStopping` is the
thesis's stopping rule. Pure rules live in `rules`, candidate lists in
`candidates`, Table 4.1 costs in `cost`.

Example:

```python
import keras, numpy as np
from keras_autolr.runtime.mcv import MCVModel, MCVStopping, Method2

inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
model = MCVModel(inner, method=Method2(alpha=0.5, factors=[2.0, 1.0, 0.5]))
model.compile(keras.optimizers.SGD(0.01),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x, y = np.random.rand(256, 8), np.random.randint(0, 3, 256)
model.fit(x, y, batch_size=64, epochs=3, verbose=0, callbacks=[MCVStopping(patience=5)])
```
"""

from keras_autolr.runtime.mcv.callbacks import MCVScheduler, MCVStopping
from keras_autolr.runtime.mcv.candidates import FACTORS, THESIS_LR_LIST, CandidateError, candidate_list
from keras_autolr.runtime.mcv.cost import run_cost, step_cost
from keras_autolr.runtime.mcv.data import PairedBatches
from keras_autolr.runtime.mcv.model import MCVModel
from keras_autolr.runtime.mcv.strategies import (METHODS, Discard, MCVError, Method1, Method2, Method3,
                                                 Strategy, Voting)

__all__ = [
    "MCVModel", "MCVScheduler", "MCVStopping", "MCVError", "CandidateError", "PairedBatches",
    "Strategy", "Discard", "Voting", "Method1", "Method2", "Method3",
    "METHODS", "FACTORS", "THESIS_LR_LIST", "candidate_list", "step_cost", "run_cost",
]
