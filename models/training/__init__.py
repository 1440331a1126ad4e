"""Training and evaluation of the shipped heads and fusion: nothing here is imported at inference.

``corpus`` (manifests, clips, splits), ``train_synth`` / ``train_text`` / ``train_fusion`` (one
per shipped weight file), ``fusion_report`` and ``evaluate`` (held-out reports), ``metrics``
(EER, ECE, ROC over sklearn), ``tables`` (markdown tables for the reports).
"""
