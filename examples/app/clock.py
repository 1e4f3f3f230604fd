"""A clock process: schedules periodic work every few seconds."""
import os
import time

INTERVAL = float(os.environ.get("TICK_SECONDS", "5"))
tick = 0
while True:
    tick += 1
    print(f"tick {tick}: enqueued the periodic cleanup", flush=True)
    time.sleep(INTERVAL)
