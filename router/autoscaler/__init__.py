"""The autoscaler: a pure policy (`decide(observation) -> Decision`) and the loop that applies it.

Modules: params (endpoint parameters, validated), observation (what a tick sees), decision
(targets, actions, reason), window and breach (stable/panic windows, sustained breaches), plan
(targets to bounded actions), policy (the protocol and shared rules), policies/ (default, vast,
kpa, skypilot by name), loop (applies decisions through a provider and reconciles).
"""
