-- wrk script for `bench/ingestion.py`: a burst of public complaints from as many people, each about the next plant
-- of the file (one permit number a line), sent without a token, each from its own address as the platform's proxy
-- reports it (X-Forwarded-For). `wrk -s complaints.lua URL -- FILE THREADS TOTAL DELAY_MS`: each connection waits
-- DELAY_MS between its complaints (the burst's pace), and each thread stops after its share of TOTAL answers.
-- At the end: one JSON line with the counts by status and the latency percentiles (microseconds).

local threads_started = 0
local threads = {}

function setup(thread)
   thread:set("index", threads_started)
   threads_started = threads_started + 1
   threads[#threads + 1] = thread
end

local permits = {}
local turn = 0
local answered = 0
local share = 0
local pause = 0
accepted = 0
limited = 0

function init(args)
   local count = tonumber(args[2])
   share = math.ceil(tonumber(args[3]) / count)
   pause = tonumber(args[4])
   local line_number = 0
   for line in io.lines(args[1]) do
      if line_number % count == index then
         permits[#permits + 1] = line
      end
      line_number = line_number + 1
   end
end

local template = '{"permit_number":"%s","category":"protocol","text":"Pekerja tidak memakai masker dan antre'
   .. ' berdesakan di gerbang pabrik pada pergantian shift pagi (keluhan %d)."}'

function delay()
   return pause
end

function request()
   local permit = permits[turn % #permits + 1]
   turn = turn + 1
   local person = index * 1000000 + turn
   local address = string.format("10.%d.%d.%d", math.floor(person / 65536) % 256, math.floor(person / 256) % 256,
      person % 256)
   return wrk.format("POST", "/public/complaints",
      {["Content-Type"] = "application/json", ["X-Forwarded-For"] = address}, string.format(template, permit, turn))
end

function response(status, headers, body)
   answered = answered + 1
   if status == 201 then
      accepted = accepted + 1
   elseif status == 429 then
      limited = limited + 1
   end
   if answered >= share then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local accepted_total, limited_total = 0, 0
   for _, thread in ipairs(threads) do
      accepted_total = accepted_total + thread:get("accepted")
      limited_total = limited_total + thread:get("limited")
   end
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"accepted":%d,"limited":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,'
      .. '"p99_us":%d}\n', summary.requests, summary.duration, accepted_total, limited_total, summary.errors.status,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      latency:percentile(50), latency:percentile(99)))
end
