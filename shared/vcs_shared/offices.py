"""District offices and their provinces, from the DOPA codes that ``geothai`` ships.

A district office is identified by its four-digit DOPA district code; its
province is the code's first two digits. Regions group provinces under one
DOPA communication centre, whose operators see those provinces only.
"""

from __future__ import annotations

from dataclasses import dataclass

import geothai

ALL_PROVINCES: frozenset[str] = frozenset(province.code for province in geothai.provinces())
"""The 77 province codes: what the national role covers."""

REGION_PROVINCES: dict[str, frozenset[str]] = {
    # Communication centre Region 12, Sakon Nakhon: the centre of the 2020 circular,
    # with the upper-north-eastern provinces around it. Confirm with DOPA before relying on it.
    "12": frozenset({"47", "48", "49", "38"}),
}


@dataclass(frozen=True, slots=True)
class Office:
    """A district administration office (amphoe, or khet in Bangkok)."""

    district_code: str
    province_code: str
    name_th: str
    name_en: str
    province_name_th: str

    @property
    def title_th(self) -> str:
        """The office's name as letters address it: ``ที่ทำการปกครองอำเภอเมืองสกลนคร
        จังหวัดสกลนคร``; Bangkok's khet: ``สำนักงานเขตพระนคร กรุงเทพมหานคร``."""
        if self.name_th.startswith("เขต"):
            return f"สำนักงาน{self.name_th} {self.province_name_th}"
        return f"ที่ทำการปกครองอำเภอ{self.name_th} จังหวัด{self.province_name_th}"

    @property
    def title_en(self) -> str:
        """``Mueang Sakon Nakhon (4701)``."""
        return f"{self.name_en} ({self.district_code})"


def find_office(district_code: str) -> Office | None:
    """The office with this DOPA district code, or ``None`` when no such district exists."""
    district = geothai.district(district_code) if district_code.isdigit() else None
    if district is None:
        return None
    province = geothai.province(district.province_code)
    return Office(
        district_code=district.code,
        province_code=district.province_code,
        name_th=district.name_th,
        name_en=district.name_en,
        province_name_th=province.name_th if province else "",
    )


def office_of(district_code: str) -> Office:
    """The office with this code, for a code already checked: ``LookupError`` if there is none."""
    office = find_office(district_code)
    if office is None:
        raise LookupError(f"no district office has the code {district_code!r}")
    return office


def all_offices() -> list[Office]:
    """Every district office of the kingdom (878 amphoe and 50 Bangkok khet)."""
    offices: list[Office] = []
    for province in geothai.provinces():
        offices.extend(
            Office(d.code, d.province_code, d.name_th, d.name_en, province.name_th)
            for d in geothai.districts(province.code)
        )
    return offices


def is_province(province_code: str) -> bool:
    """Whether the code is one of the 77 provinces."""
    return province_code in ALL_PROVINCES


def region_of(province_code: str) -> str | None:
    """The communication-centre region a province belongs to, if one is configured."""
    for region, provinces in REGION_PROVINCES.items():
        if province_code in provinces:
            return region
    return None
