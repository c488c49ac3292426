"""Chapter 00's lab: what the primer on measuring GANs claims about the metrics, checked by ``gan_course.claims``.

The primer trains nothing: its "generators" are functions with known defects (held-out data, noise, blur, a
truncated pool, half the classes, one class, a memoriser of training images), and every number is computed in
``gan_course.metrics``. ``CLAIMS`` states what the metric papers say those numbers must show; the notebook records
the quantities, and ``benchmarks/claims.py --chapters 00`` checks them over seeds (the seed draws the subsets and
the samples, not the networks).
"""

from __future__ import annotations

from ..claims import Claim

# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("fid_biased_at_small_n", "Binkowski et al. 2018, Sec. 3 / Chong & Forsyth 2020: FID is biased upwards, "
          "more the fewer the samples (held-out data against training images: mean FID at the smallest N_CURVE vs "
          "at the largest)", "fid_held_out_smallest_n", ">", "fid_held_out_largest_n"),
    Claim("kid_unbiased_at_small_n", "Binkowski et al. 2018, Sec. 3: KID's estimator is unbiased (held-out data "
          "against training images at the smallest N_CURVE: |mean KID| within 3 standard errors of 0 over "
          "CURVE_SEEDS draws)", "kid_held_out_smallest_n_abs_z", "<", 3.0),
    Claim("memoriser_fools_fid", "The course, Sec. 8: a generator that returns training images scores an FID like "
          "fresh data does (memoriser vs held-out data, the same n and reference: no worse than 1.5 times, since two "
          "real samples' FIDs differ by chance)", "fid_memoriser", "<=", "fid_held_out", factor=1.5),
    Claim("copying_test_catches_memoriser", "Meehan et al. 2020, Sec. 3: samples closer to the training set than "
          "fresh data is give a negative data-copying z (memoriser vs held-out data)", "copying_z_memoriser", "<",
          "copying_z_held_out"),
    Claim("truncation_lowers_recall", "Kynkaanniemi et al. 2019, Sec. 4 / BigGAN Sec. 3.1: truncation trades "
          "variety away (recall at the smallest psi whose sample has no repeats vs psi = 1)",
          "recall_truncated", "<", "recall_untruncated"),
]
