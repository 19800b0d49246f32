"""The model-kind table: the five models (ALI, ALICE, sVAE, sVAE-r, VAE) and what sets them apart, one row each.

objective.kind holds `name` (svae_r); presets and pages spell it `spelling` (svae-r). Adding a model kind is a row
here plus its losses in objectives.py (docs/design.md). No torch here: config.py reads it before torch loads.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str            # objective.kind
    spelling: str        # in preset names (mnist-svae-r) and on the command line
    title: str           # in tables and pictures
    description: str     # what `svae presets` says
    adversarial: bool    # trained against a critic f(x, z)
    reconstructs: bool   # adds lambda * (rec_x + z_weight * rec_z); the presets set lambda 1 for these, else 0
    gen_loss: str | None  # encoder+decoder loss from the critic: "ali" (non-saturating), "svae" (raw logit), None


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("ali", "ali", "ALI", "ALI/BiGAN: adversarial joint matching (JS), no reconstruction term",
         adversarial=True, reconstructs=False, gen_loss="ali"),
    Kind("alice", "alice", "ALICE", "ALICE: ALI + lambda * explicit cycle consistency (rec_x + rec_z)",
         adversarial=True, reconstructs=True, gen_loss="ali"),
    Kind("svae", "svae", "sVAE", "sVAE: plug-in symmetric KL on the critic's raw logit",
         adversarial=True, reconstructs=False, gen_loss="svae"),
    Kind("svae_r", "svae-r", "sVAE-r", "sVAE-r: sVAE + lambda * the likelihood terms (rec_x + rec_z)",
         adversarial=True, reconstructs=True, gen_loss="svae"),
    Kind("vae", "vae", "VAE", "VAE: Gaussian encoder, closed-form KL, no critic (reference point)",
         adversarial=False, reconstructs=False, gen_loss=None),
)}
BY_SPELLING = {k.spelling: k for k in KINDS.values()}


def kind(name: str) -> Kind:
    """The row of objective.kind `name` (svae_r) or of its spelling (svae-r)."""
    found = KINDS.get(name) or BY_SPELLING.get(name)
    if found is None:
        raise KeyError(f"unknown model kind {name!r}; allowed: {', '.join(KINDS)}")
    return found
