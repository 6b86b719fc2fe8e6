"""The worker threads behind :mod:`minise.parallel`: a slice of the caller's work handed to each.

The calling thread runs the first slice itself, each worker one of the others, and the caller
waits until all are done (PyTorch's ``at::parallel_for`` does the same on OpenMP's threads).
A worker sleeps on its own lock between slices. Handing a slice over costs 15-100 us (74-85 on
this project's KVM guest), most of it the woken worker taking the GIL to run the Python that
reaches its NumPy call; spinning instead, even in C without the GIL, did not make a network's
step faster (docs/benchmarks.md#spinning).
"""

import os
import threading

__all__ = ["Pool"]


class Pool:
    """``workers`` threads, each waiting on its own lock for a slice of the current call.

    Locks rather than a queue of futures: handing a slice over and collecting it costs a
    few microseconds this way, and a step makes a few hundred such calls.
    run_in_worker(body, chunk): how a worker runs ``body(chunk)``; run_here(body, chunk): how the
    caller runs its own (minise.parallel marks the thread as inside a chunk, and counts the
    workers' CPU time). ValueError when the system cannot start ``workers`` threads.
    """

    def __init__(self, workers, run_in_worker, run_here):
        self.run_in_worker, self.run_here = run_in_worker, run_here
        self.busy = threading.Lock()        # one call at a time; a second caller runs serially
        try:
            self.jobs = [None] * workers    # (body, chunk) for each worker, None: stop
        except (OverflowError, MemoryError) as exc:
            raise ValueError(f"set_num_threads: {workers + 1} threads cannot even be counted out "
                             f"({type(exc).__name__}); use fewer (this machine has {os.cpu_count()} cores)") from None
        self.errors = [None] * workers
        self.go = [threading.Lock() for _ in range(workers)]
        self.done = [threading.Lock() for _ in range(workers)]
        for i in range(workers):
            self.go[i].acquire()
            self.done[i].acquire()
            try:
                threading.Thread(target=self._work, args=(i,), name=f"minise-{i + 1}", daemon=True).start()
            except RuntimeError as exc:     # "can't start new thread": the system's limit
                for started in range(i):    # end the ones that did start (their job is None: stop)
                    self.go[started].release()
                raise ValueError(f"set_num_threads: the system started only {i + 1} of the {workers + 1} "
                                 f"threads asked for ({exc}); use fewer (this machine has "
                                 f"{os.cpu_count()} cores)") from exc

    def _work(self, i):
        while True:
            self.go[i].acquire()            # sleeps until run() hands over a slice
            job = self.jobs[i]
            if job is None:
                return
            try:
                self.run_in_worker(*job)
            except BaseException as exc:    # handed to the caller, raised there
                self.errors[i] = exc
            self.done[i].release()

    def run(self, body, chunks):
        """body(chunk) for every chunk, the first on the calling thread; raise the first error."""
        workers = range(len(chunks) - 1)
        for i in workers:
            self.jobs[i], self.errors[i] = (body, chunks[i + 1]), None
            self.go[i].release()
        try:
            self.run_here(body, chunks[0])
        finally:
            for i in workers:
                self.done[i].acquire()      # wait, even when our own slice failed
        for i in workers:
            if self.errors[i] is not None:
                raise self.errors[i]

    def stop(self):
        """End the workers once the current call is done. ``busy`` stays taken: a caller
        still holding this old pool runs serially instead of waiting for dead workers."""
        self.busy.acquire()
        for i in range(len(self.jobs)):
            self.jobs[i] = None
            self.go[i].release()
