"""Profile options of PS3.15 Annex E, their CID 7050 codes, and the PET-safe private list.

Options are those of PS3.15 §E.3 (Table E.1-1's columns); each has its code from PS3.16
CID 7050 *De-identification Method*, recorded in (0012,0064) *De-identification Method
Code Sequence* of every de-identified instance.

The safe private attributes are the vendors' PET quantitation elements that SUV needs
(PS3.15 §E.3.10 lets a profile retain private attributes known to be safe): GE
``GEMS_PETD_01`` (0009,xx..) dose, times and half-life, Philips ``Philips PET Private
Group`` (7053,xx00) *SUV Scale Factor* and (7053,xx09) *Activity Concentration Scale
Factor*, Siemens ``SIEMENS MED PT`` (0071,xx22) *decay correction date-time*. Their DT
values are shifted with the other dates.
"""

from __future__ import annotations

from enum import StrEnum

from oncohybrid.errors import InputError


class Option(StrEnum):
    """A PS3.15 Annex E option (value = the name used on the command line)."""

    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain-longitudinal-modified-dates"
    RETAIN_LONGITUDINAL_FULL_DATES = "retain-longitudinal-full-dates"
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"
    RETAIN_DEVICE_IDENTITY = "retain-device-identity"
    RETAIN_INSTITUTION_IDENTITY = "retain-institution-identity"
    CLEAN_DESCRIPTORS = "clean-descriptors"
    RETAIN_SAFE_PRIVATE = "retain-safe-private"

    @property
    def column(self) -> str:
        """The option's column in :mod:`oncohybrid.deid.table`."""
        return self.value.replace("-", "_")


#: CID 7050 (PS3.16) codes, scheme DCM.
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES: dict[Option, tuple[str, str]] = {
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_LONGITUDINAL_FULL_DATES: (
        "113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: (
        "113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    Option.RETAIN_PATIENT_CHARACTERISTICS: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_SAFE_PRIVATE: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY: ("113112", "Retain Institution Identity Option"),
}

#: The default options: the Basic Profile plus these (issue #16), and the PET-safe
#: private list, without which Philips CNTS images have no SUV.
DEFAULT_OPTIONS: frozenset[Option] = frozenset({
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
    Option.RETAIN_PATIENT_CHARACTERISTICS,
    Option.RETAIN_DEVICE_IDENTITY,
    Option.RETAIN_SAFE_PRIVATE,
})

#: (group, private creator, element offset) → VR of the retained vendor PET elements.
SAFE_PRIVATE: dict[tuple[int, str, int], str] = {
    # GE PETD: scan date-time, tracer, dose, measurement/admin/post-injection times, nuclide,
    # half-life, positron fraction (GE PET DICOM conformance statement).
    (0x0009, "GEMS_PETD_01", 0x0D): "DT",  # scan_datetime
    (0x0009, "GEMS_PETD_01", 0x36): "LO",  # tracer_name
    (0x0009, "GEMS_PETD_01", 0x38): "FL",  # tracer_activity
    (0x0009, "GEMS_PETD_01", 0x39): "DT",  # meas_datetime
    (0x0009, "GEMS_PETD_01", 0x3A): "FL",  # pre_inj_volume
    (0x0009, "GEMS_PETD_01", 0x3B): "DT",  # admin_datetime
    (0x0009, "GEMS_PETD_01", 0x3C): "FL",  # post_inj_activity
    (0x0009, "GEMS_PETD_01", 0x3D): "DT",  # post_inj_datetime
    (0x0009, "GEMS_PETD_01", 0x3E): "SH",  # radionuclide_name
    (0x0009, "GEMS_PETD_01", 0x3F): "FL",  # half_life
    (0x0009, "GEMS_PETD_01", 0x40): "FL",  # positron_fraction
    # Philips: SUV and activity concentration scale factors.
    (0x7053, "Philips PET Private Group", 0x00): "DS",
    (0x7053, "Philips PET Private Group", 0x09): "DS",
    # Siemens: decay correction date-time.
    (0x0071, "SIEMENS MED PT", 0x22): "DT",
}


def parse_options(values: list[str] | None) -> frozenset[Option]:
    """Options from ``--options`` values (repeatable, comma-separated); None → defaults.

    ``basic`` names the Basic Profile alone (always applied); ``default`` the defaults.
    """
    if not values:
        return DEFAULT_OPTIONS
    chosen: set[Option] = set()
    for value in values:
        for name in filter(None, (v.strip().lower() for v in value.split(","))):
            if name == "basic":
                continue
            if name == "default":
                chosen |= DEFAULT_OPTIONS
                continue
            try:
                chosen.add(Option(name))
            except ValueError:
                names = ", ".join(["basic", "default", *(o.value for o in Option)])
                raise InputError(f"--options: unknown option {name!r}; one of {names}") from None
    if {Option.RETAIN_LONGITUDINAL_FULL_DATES,
            Option.RETAIN_LONGITUDINAL_MODIFIED_DATES} <= chosen:
        raise InputError("--options: retain-longitudinal-full-dates and "
                         "retain-longitudinal-modified-dates exclude each other")
    return frozenset(chosen)
