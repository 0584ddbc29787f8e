"""Catalog threshold values the boards draw (RULES.md), in one place.

Every number a board shows as a threshold comes from here. When the server's rule code exposes its
defaults (server/domain), point these names there instead of repeating the values.
"""

from __future__ import annotations

from typing import Final

# Electrical (RULES.md 2.1): strip and plug load as a share of the rated current, in per cent.
STRIP_LOAD_HIGH_PCT: Final = 80.0  # elec.strip_load_high (warning); NEC continuous 80 %
STRIP_OVERLOAD_PCT: Final = 100.0  # elec.strip_overload (major)
STRIP_OVERLOAD_CRITICAL_PCT: Final = 125.0  # elec.strip_overload (critical, 10 s)
STRIP_DEFAULT_RATED_A: Final = 10.0  # assumed rating when unknown (pick)
VOLTAGE_MIN_V: Final = 198.0  # elec.voltage_out_of_range: 220 V -10 % (GB/T 12325)
VOLTAGE_MAX_V: Final = 235.4  # 220 V +7 %
AFTER_SHIFT_LOAD_W: Final = 15.0  # elec.after_shift_load
SEAT_POWER_NORMAL_MAX_W: Final = 400.0  # a normal seat draws 50-400 W
HIGH_POWER_STEP_W: Final = 800.0  # elec.high_power_appliance

# Fire (RULES.md 2.2): temperature sensors as corroboration only.
HEAT_PREWARN_C: Final = 45.0  # fire.heat_prewarn
HEAT_ALARM_C: Final = 54.0  # fire.heat_alarm (EN 54-5 A1 static response)

# Machine room (RULES.md 2.5): inlet temperature tiers, humidity, dew point, rate of change.
MR_TEMP_LOW_C: Final = 18.0  # mr.temp_low
MR_TEMP_WARNING_C: Final = 27.0  # mr.temp_high warning
MR_TEMP_MAJOR_C: Final = 30.0  # mr.temp_high major
MR_TEMP_CRITICAL_C: Final = 32.0  # mr.temp_high critical
MR_RH_LOW_PCT: Final = 30.0  # mr.humidity_low major (static discharge)
MR_RH_HIGH_PCT: Final = 60.0  # mr.humidity_high warning
MR_RH_MAJOR_PCT: Final = 80.0  # mr.humidity_high major
MR_DEW_POINT_MIN_C: Final = 5.5  # mr.humidity_low warning
MR_DEW_POINT_MAX_C: Final = 15.0  # mr.humidity_high warning
MR_TEMP_RATE_C: Final = 5.0  # mr.temp_rate: change per window
MR_TEMP_RATE_WINDOW: Final = "15m"

# Office environment (RULES.md 2.6), GB/T 18883-2002.
OFFICE_TEMP_SUMMER_C: Final = (22.0, 28.0)
OFFICE_TEMP_WINTER_C: Final = (16.0, 24.0)
OFFICE_RH_SUMMER_PCT: Final = (40.0, 80.0)
OFFICE_RH_WINTER_PCT: Final = (30.0, 60.0)
EQUIPMENT_HOTSPOT_C: Final = 40.0  # env.equipment_hotspot

# Access (RULES.md 2.4).
ACCESS_DENIED_REPEAT: Final = 3  # access.denied_repeat: denials within the window
ACCESS_DENIED_WINDOW: Final = "5m"

# Inspections: RULES.md names no compliance target; this is a pick for colouring only.
INSPECTION_COMPLIANCE_TARGET_PCT: Final = 95.0
INSPECTION_COMPLIANCE_POOR_PCT: Final = 80.0
