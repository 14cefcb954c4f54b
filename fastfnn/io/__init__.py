"""Files: writing them safely (:mod:`fastfnn.io.atomic`) and the IDX array codec (:mod:`fastfnn.io.idx`).

Nothing here knows about estimators or data sets; the modules above use these to read and write bytes.
"""
