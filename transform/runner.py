"""Running a plan's steps: the base image's, a layer's (transform/layering.py), a branch's, each frame's.

Like imgproxy's ``Pipeline.Run``, a plain loop over the steps with the render's watch checked between them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyvips

from transform.limits import check_output
from transform.ops import Action, Ctx

#: Steps after which the image is computed before going on (see run_each).
MATERIALISE_EVERY = 32

#: What ``run_each`` calls with each step and its results, before the next step (may raise a 400).
Check = Callable[[Action, list[pyvips.Image]], None]


def run_steps(steps: Sequence[Action], ctx: Ctx, image: pyvips.Image) -> pyvips.Image:
    """Each step's result is checked against the output limit while it is still only described (steps
    that would compute a larger intermediate check it themselves)."""

    def check(step: Action, made: list[pyvips.Image]) -> None:
        # Before the last step the image is not the result: name the step that made it, or a 413 for
        # a_45/c_scale,w_100 said "Result is too large" of a 100-pixel result.
        what = "Result" if step is steps[-1] else f"The image after {step.canonical}"
        check_output(made[0].width, made[0].height, ctx.limits, what)

    return run_each(steps, ctx, [image], check)[0]


def run_each(
    steps: Sequence[Action], ctx: Ctx, images: list[pyvips.Image], check: Check
) -> list[pyvips.Image]:
    """Every step on every image (one image, or the frames of an animation), step by step; ``check`` sees
    each step's results before the next step runs. Each result is owned by ``ctx.watch`` in place of the
    image it was made from, so that stopping the render stops the work now flowing."""
    watch = ctx.watch
    for done, step in enumerate(steps, 1):
        watch.check()  # stopped during work libvips does not run (a model, numpy): no further step
        made = [watch.own(step.run(ctx, image)) for image in images]
        for image in images:
            watch.release(image)
        images = made
        check(step, images)
        if done < len(steps) and (step.wide or done % MATERIALISE_EVERY == 0):
            # Computed before the next step: after a wide-margin operation (see Action.wide), and every so
            # often, because a lazy pipeline thousands of operations deep overflows libvips' C stack when
            # it is evaluated (a segfault that takes the worker down). The last step's result streams.
            images = [watch.materialise(image) for image in images]
    return images


def block_source_key(source_key: str, autorotate: bool) -> str:
    """The key of the image a block's steps start from: under a_ignore, the source as stored rather than
    turned upright. Mask keys need it: a_ignore may follow e_background_removal, so the canonical steps
    before the mask do not tell the two apart."""
    return source_key if autorotate else f"{source_key}|a_ignore"
