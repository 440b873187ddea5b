"""A render's kill switch: stops its libvips work from another thread (a timer, a departed client).

libvips checks an image's kill flag each time it prepares a region of that image (every tile), so a flag
set from any thread stops an evaluation (``copy_memory``, an encode, a statistic) at its next tile with a
``pyvips.Error``. The flag only reaches evaluations that pull pixels through the flagged image, so the
renderer hands the watch the images its work flows through as it makes them (``own``): the start image,
each step's result, each computed intermediate. The watch keeps only those the render still needs (the
renderer ``release``s one once its successor exists), so it holds no memory the pipeline had let go.

libvips' operation cache shares images between renders (two loads of one file, or one operation on the
same input, are one image), and a kill flag set on a shared image would stop other renders too, or stay
set and fail the next one (libvips clears a flag only when it sees it). So ``own`` flags a fresh
``copy`` (an operation libvips never caches, "to make fresh vipsimages to stop sharing") that reports
progress to no other image (see ``own``): only this render pulls pixels through it.

>>> import pyvips
>>> watch = Watch()
>>> image = watch.own(pyvips.Image.black(8, 8))
>>> watch.stop(RuntimeError("stopped"))
True
>>> image.avg()
Traceback (most recent call last):
...
pyvips.error.Error: ...
"""

from __future__ import annotations

import threading

import pyvips


class Watch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, pyvips.Image] = {}
        self.error: BaseException | None = None
        self._stopped = False  # outlives ``error``, which ``close`` lets go of

    @property
    def stopped(self) -> bool:
        return self._stopped

    def own(self, image: pyvips.Image, *, fresh: bool = False) -> pyvips.Image:
        """``image``, as an image only this render uses (a copy unless ``fresh``: made by no cached
        operation, such as a ``copy_memory`` result), killed with the render. Use the result."""
        if not fresh:
            image = image.copy()
        # libvips' set_kill also flags the image whose progress an image reports (its progress_signal,
        # inherited from upstream): a file's loader once its pixels were read, shared by every render of
        # the file through the operation cache. This image reports to nobody, so it stops only itself.
        image.set_progress(False)
        with self._lock:
            if self.error is not None:
                image.set_kill(True)
            else:
                self._held[id(image)] = image
        return image

    def release(self, image: pyvips.Image) -> None:
        """No longer needed to stop the render (an image made from it is owned now)."""
        with self._lock:
            self._held.pop(id(image), None)

    def materialise(self, image: pyvips.Image) -> pyvips.Image:
        """``image.copy_memory()``, owned in place of ``image``: a memory image keeps no link to what it
        was computed from, so the work after it is stopped through it."""
        computed = self.own(image.copy_memory(), fresh=True)
        self.release(image)
        return computed

    def stop(self, error: BaseException) -> bool:
        """Stop the render with ``error`` (from any thread); False when it was already stopped."""
        with self._lock:
            if self._stopped:
                return False
            self._stopped, self.error = True, error
            for image in self._held.values():
                image.set_kill(True)
            return True

    def check(self) -> None:
        """Raise the error the render was stopped with, if it was (between steps, and around work that
        libvips does not run: a model's inference, numpy)."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """The render is over: let go of its images (a timer may hold the watch a while longer), and of
        the error it was stopped with. That error, raised, holds the render's frames in its traceback,
        and they hold this watch: a cycle that kept every image of a stopped render (GBs of a large
        original's layers) until the garbage collector's next full pass, which an idle server may not
        run for hours. The error itself goes on up to the caller; ``stopped`` stays True."""
        with self._lock:
            self._held.clear()
            self.error = None


class Unwatched(Watch):
    """A render nobody stops (the command line): owns nothing, copies nothing."""

    def own(self, image: pyvips.Image, *, fresh: bool = False) -> pyvips.Image:
        return image

    def materialise(self, image: pyvips.Image) -> pyvips.Image:
        return image.copy_memory()

    def stop(self, error: BaseException) -> bool:
        return False  # one instance for every such render: nothing may stop them all

    def close(self) -> None:
        pass


UNWATCHED = Unwatched()
