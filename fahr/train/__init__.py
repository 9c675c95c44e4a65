"""Training: one shared loop (``loop``) that MAE pretraining, FaceAge and FaceSurvival plug into."""
