"""One model family per module, named after its chapter (gan, cgan, dcgan, infogan, pix2pix, wgan, ...).

Each module holds that chapter's networks whole, with docstrings naming the paper's equations and sections;
shared building blocks come from ``gan_course.layers``.
"""
