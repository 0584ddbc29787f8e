"""Catalog threshold values the boards draw (RULES.md), in one place.

Every number a board shows as a threshold comes from here, and where a rule has the number, from the
rule's own default (server/domain/thresholds.py): change it there and the boards follow on rebuild.
"""

from __future__ import annotations

from typing import Final

from server.domain.thresholds import DEFAULTS

# The server's own rule defaults (server/domain/thresholds.py): a board draws the number the rule uses.
_D = DEFAULTS

# Electrical (RULES.md 2.1): strip and plug load as a share of the rated current, in per cent.
STRIP_LOAD_HIGH_PCT: Final = 100 * _D["elec.strip_load_high"]["raise_ratio"]  # warning; NEC continuous 80 %
STRIP_OVERLOAD_PCT: Final = 100 * _D["elec.strip_overload"]["major_ratio"]  # major
STRIP_OVERLOAD_CRITICAL_PCT: Final = 100 * _D["elec.strip_overload"]["surge_ratio"]  # critical (10 s)
STRIP_DEFAULT_RATED_A: Final = 10.0  # assumed rating when unknown (RULES.md §0.4 pick; Device.rating_a)
VOLTAGE_MIN_V: Final = float(_D["elec.voltage_out_of_range"]["low_v"])  # 220 V -10 % (GB/T 12325)
VOLTAGE_MAX_V: Final = float(_D["elec.voltage_out_of_range"]["high_v"])  # 220 V +7 %
AFTER_SHIFT_LOAD_W: Final = float(_D["elec.after_shift_load"]["power_w"])
SEAT_POWER_NORMAL_MAX_W: Final = 400.0  # a normal seat draws 50-400 W (RULES.md, not a rule threshold)
HIGH_POWER_STEP_W: Final = float(_D["elec.high_power_appliance"]["step_w"])

# Fire (RULES.md 2.2): temperature sensors as corroboration only.
HEAT_PREWARN_C: Final = float(_D["fire.heat_prewarn"]["static_c"])
HEAT_ALARM_C: Final = float(_D["fire.heat_alarm"]["static_c"])  # EN 54-5 A1 static response

# Machine room (RULES.md 2.5): inlet temperature tiers, humidity, dew point, rate of change.
MR_TEMP_LOW_C: Final = float(_D["mr.temp_low"]["low_c"])
MR_TEMP_WARNING_C: Final = float(_D["mr.temp_high"]["warning_c"])
MR_TEMP_MAJOR_C: Final = float(_D["mr.temp_high"]["major_c"])
MR_TEMP_CRITICAL_C: Final = float(_D["mr.temp_high"]["critical_c"])
MR_RH_LOW_PCT: Final = float(_D["mr.humidity_low"]["major_rh_pct"])  # static discharge
MR_RH_HIGH_PCT: Final = float(_D["mr.humidity_high"]["rh_pct"])
MR_RH_MAJOR_PCT: Final = float(_D["mr.humidity_high"]["major_rh_pct"])
MR_DEW_POINT_MIN_C: Final = float(_D["mr.humidity_low"]["dew_point_c"])
MR_DEW_POINT_MAX_C: Final = float(_D["mr.humidity_high"]["dew_point_c"])
MR_TEMP_RATE_C: Final = float(_D["mr.temp_rate"]["delta_c"])
MR_TEMP_RATE_WINDOW: Final = f"{int(_D['mr.temp_rate']['window_s']) // 60}m"

# Office environment (RULES.md 2.6), GB/T 18883-2002.
OFFICE_TEMP_SUMMER_C: Final = (22.0, 28.0)
OFFICE_TEMP_WINTER_C: Final = (16.0, 24.0)
OFFICE_RH_SUMMER_PCT: Final = (40.0, 80.0)
OFFICE_RH_WINTER_PCT: Final = (30.0, 60.0)
EQUIPMENT_HOTSPOT_C: Final = 40.0  # env.equipment_hotspot

# Access (RULES.md 2.4).
ACCESS_DENIED_REPEAT: Final = int(_D["access.denied_repeat"]["count"])  # denials within the window
ACCESS_DENIED_WINDOW: Final = f"{int(_D['access.denied_repeat']['window_s']) // 60}m"

# Inspections: RULES.md names no compliance target; this is a pick for colouring only.
INSPECTION_COMPLIANCE_TARGET_PCT: Final = 95.0
INSPECTION_COMPLIANCE_POOR_PCT: Final = 80.0
