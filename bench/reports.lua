-- wrk script for `bench/ingestion.py`: each request a distinct, valid report for the next plant's open period,
-- with that company's token. `wrk -s reports.lua URL -- PLANTS_FILE THREADS`; each line of the plants file is
-- "permit_id period_id token". Thread i takes every THREADS-th plant starting at i, so no two threads send
-- for the same plant; after its last plant a thread starts again (a correction, which supersedes).
-- At the end: one JSON line with the counts and the latency percentiles (microseconds).

local threads_started = 0

function setup(thread)
   thread:set("index", threads_started)
   threads_started = threads_started + 1
end

local plants = {}
local turn = 0

function init(args)
   local threads = tonumber(args[2])
   local line_number = 0
   for line in io.lines(args[1]) do
      if line_number % threads == index then
         local permit, period, token = line:match("^(%S+) (%S+) (%S+)$")
         plants[#plants + 1] = {permit, period, "Bearer " .. token}
      end
      line_number = line_number + 1
   end
   math.randomseed(index + 1)
end

local template = '{"permit_id":"%s","period_id":"%s","workforce":{"total":%d,"on_site_per_shift":[%d,%d]},'
   .. '"odp":%d,"pdp":%d,"new_positives":0,"isolating_workers":0,"tests":{"pcr":%d,"antigen":%d},'
   .. '"vaccinated":{"dose1":%d,"dose2":%d,"booster":%d},"transport_modes":["company bus","motorcycle"],'
   .. '"protocol_checklist":{"temperature_screening":true,"masks":true,"distancing":true,"ventilation":true,'
   .. '"disinfection":true,"handwash_stations":true,"pedulilindungi_scan":true},"case_handling":"",'
   .. '"declared_true":true}'

function request()
   local plant = plants[turn % #plants + 1]
   turn = turn + 1
   local total = math.random(40, 4000)
   -- At least half the staff with a first dose (rounded up: 20 of 41 is not half), as the September 2021 lift asks.
   local dose1 = math.random(math.ceil(total / 2), total)
   local dose2 = math.random(math.floor(dose1 / 2), dose1)
   local body = string.format(template, plant[1], plant[2], total, math.floor(total / 3), math.floor(total / 4),
      math.random(0, 5), math.random(0, 3), math.random(0, 50), math.random(0, 200), dose1, dose2,
      math.random(0, dose2))
   return wrk.format("POST", "/reports",
      {["Content-Type"] = "application/json", ["Authorization"] = plant[3]}, body)
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
      summary.requests, summary.duration, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
      latency:percentile(50), latency:percentile(99)))
end
