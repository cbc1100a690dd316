"""Generative models that are not part of genfair, written as a user would write them, each in one
file, and run through the loop with ``model=custom`` from the repository root::

    genfair model=custom model._target_=examples.flow.RealNVP
    genfair model=custom model._target_=examples.autoregressive.MADE
    genfair model=custom model._target_=examples.gan.GAN model.conditional=false loop.synthetic_labels=counts 'arms={mle:{estimator.name:mle}}' compare.baseline=null

See docs/guides/wrapping-models.md, "Bring your own model".
"""
