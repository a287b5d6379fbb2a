"""Writers of simulated readings in real eye-tracker and dataset formats, each with a truth.json."""

from ml.synthetic.writers.egd_cxr import EGD_COLUMNS, MASTER_SHEET_COLUMNS, write_egd_cxr
from ml.synthetic.writers.eyelink import write_eyelink_asc
from ml.synthetic.writers.gazepoint import GAZEPOINT_COLUMNS, write_gazepoint_csv
from ml.synthetic.writers.generic import write_generic_csv
from ml.synthetic.writers.pupil import write_pupil_core
from ml.synthetic.writers.reflacx import REFLACX_FIXATION_COLUMNS, write_reflacx
from ml.synthetic.writers.tobii import TOBII_PRO_LAB_COLUMNS, write_tobii_pro_lab_tsv
from ml.synthetic.writers.truth import reading_truth, write_truth

__all__ = [
    "EGD_COLUMNS",
    "GAZEPOINT_COLUMNS",
    "MASTER_SHEET_COLUMNS",
    "REFLACX_FIXATION_COLUMNS",
    "TOBII_PRO_LAB_COLUMNS",
    "reading_truth",
    "write_egd_cxr",
    "write_eyelink_asc",
    "write_gazepoint_csv",
    "write_generic_csv",
    "write_pupil_core",
    "write_reflacx",
    "write_tobii_pro_lab_tsv",
    "write_truth",
]
