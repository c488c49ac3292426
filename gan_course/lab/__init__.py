"""The lab: everything a chapter *does with* its paper's model, kept out of the paper's module.

``gan_course.models.<paper>`` holds only what the paper defines (constants, blocks, G, D, the objective, a config of
the paper's hyper-parameters and one ``train_step``). ``gan_course.lab.<paper>`` holds the chapter's measurements,
monitors, sweeps, figures (``render_*``) and ipywidgets explorers (``*_explorer``) built on it. Measurement that
several chapters share lives once: ``gan_course.lab.spectra`` (spectral norm and singular values).
"""
