"""The feature classifier (vaelab.evaluate.classifier) whose features the Frechet distance and precision / recall
compare."""


def test_the_feature_classifier_trains_for_about_64000_images():
    """8 epochs of mnist-mini's 8,000 images (as before), 2 of 60,000, never fewer than 2 nor more than 8."""
    from vaelab.evaluate.classifier import default_epochs

    assert [default_epochs(n) for n in (50, 8000, 16000, 21000, 60000, 10**6)] == [8, 8, 4, 4, 2, 2]
