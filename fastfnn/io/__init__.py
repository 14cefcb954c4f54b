"""Files: writing them safely (:mod:`.atomic`), the IDX array codec (:mod:`.idx`), the model file
(:mod:`.modelfile`, a fitted state in one ``.npz``) and training checkpoints (:mod:`.checkpoint`).

Nothing here imports the estimator or the data sets; the modules above use these to read and write.
"""
