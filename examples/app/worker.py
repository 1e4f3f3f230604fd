"""A worker process: takes jobs from an imaginary queue, one per second."""
import os
import signal
import sys
import time

QUEUE = os.environ.get("QUEUE", "default")
running = True


def stop(signum, _frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
job = 0
while running:
    job += 1
    print(f"processed job {job} from queue {QUEUE}", flush=True)
    time.sleep(1)
print("worker finished its last job", flush=True)
sys.exit(0)
