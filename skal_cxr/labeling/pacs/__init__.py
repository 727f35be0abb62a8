"""Labeling projects over a PACS: a DICOMweb pool in, labels out as DICOM
Structured Reports (``pip install 'skal-cxr[pacs]'``).
"""
