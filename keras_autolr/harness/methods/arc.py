"""Registers ARC as the learning-rate method `"arc"` in `keras_autolr.harness.methods`.

Options (via `make_setup("arc", ..., frequency=3, controller=path, verbose=1)`):
`frequency` (default "auto"), `controller` (default: the shipped one),
`use_validation` (default True), `verbose`.

Example:

```python
from keras_autolr.harness import methods

setup = methods.make_setup("arc", initial_lr=1e-4, epochs=30, steps_per_epoch=350, frequency=3)
assert type(setup.callbacks[-1]).__name__ == "ARC"
```
"""

from keras_autolr.runtime.arc.callback import ARC
from keras_autolr.harness.methods import Setup, make_optimizer, register
from keras_autolr.harness.methods.tuning_free import _options

__all__ = []  # registers the method; nothing to import from here


@register("arc")
def arc_method(ctx):
    _options(ctx, ("controller", "frequency", "use_validation", "verbose"))  # refuses unknown ones
    cb = ARC(
        controller=ctx.options.get("controller"),
        frequency=ctx.options.get("frequency", "auto"),
        use_validation=ctx.options.get("use_validation", True),
        verbose=ctx.options.get("verbose", 0),
    )
    return Setup(make_optimizer(ctx.optimizer, ctx.initial_lr), [cb])
