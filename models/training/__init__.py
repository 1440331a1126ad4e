"""Training, evaluation and reports of the shipped heads and fusion; never loaded at inference.

- ``corpus``: row records, manifests, clips, leakage-free splits and folds;
- synthetic-voice head: ``synth_data`` (rows, windows, feature cache) -> ``synth_fit`` (fits)
  -> ``train_synth`` (the run); ``evaluate`` -> ``evaluate_report`` + ``evaluate_plots``;
- text heads: ``text_features`` -> ``text_eval`` -> ``text_report``; ``train_text`` (commands);
- fusion: ``fusion_fit`` (settings, fit, scores) -> ``train_fusion`` (the run) -> ``fusion_report``;
- ``metrics`` (EER, ECE, ROC over ``sklearn.metrics``), ``tables`` (the markdown-table writer).
"""
