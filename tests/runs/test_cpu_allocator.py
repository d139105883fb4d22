"""Freed activation memory is reused, not faulted in again at every training step."""

import json
import subprocess
import sys

import pytest

STEPS = """
import json, resource, sys
import torch
import torch.nn.functional as F
from leak_detection.runs.cpu_allocator import keep_freed_memory
from leak_detection.model.network import LeakCNNMulti

if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()  # once per process; asking again is harmless
torch.manual_seed(0)
model = LeakCNNMulti(n_classes=5).train()
optimizer = torch.optim.AdamW(model.parameters())
x, y = torch.randn(1024, 1, 32, 1), torch.randint(0, 5, (1024,))

def step():
    logits, _ = model(x)
    optimizer.zero_grad()
    F.cross_entropy(logits, y).backward()
    optimizer.step()

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def page_faults_of_ten_steps(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_training_steps_stop_faulting_their_activations_in():
    default, kept = page_faults_of_ten_steps("default"), page_faults_of_ten_steps("keep")
    # glibc's defaults hand the activations back to the kernel: thousands of faults per step.
    assert default > 10_000
    assert kept < default / 5
