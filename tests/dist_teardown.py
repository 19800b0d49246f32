"""Run by tests/test_training_distributed.py under torchrun: `svae train` in this process, then the threads still
alive."""
import json
import os
import sys

from svae.cli import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    threads = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
    print(json.dumps({"rank_of_teardown": int(os.environ["RANK"]), "code": code, "threads": threads}))
