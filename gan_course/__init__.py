"""gan_course: the companion library of gan-course, ten GAN papers in PyTorch notebooks.

Chapters: 01 GAN, 02 cGAN, 03 DCGAN, 04 InfoGAN, 05 pix2pix, 06 WGAN / WGAN-GP, 07 SAGAN, 08 BigGAN,
09 StarGAN, 10 StyleGAN-XL. See README.md for the chapter map and docs/DEVELOPING.md for the layout.
"""

__version__ = "0.2.0"
