"""A hand-built audit data set; every expected number is counted by hand in the tests.

Exams (data-row number: verdict, why):
 1 E1  P1  screening 1   -> FN: P1's invasive cancer is dated exactly 365 days later
       (2024-01-10 + 365 d = 2025-01-09; 2024 is a leap year)
 2 E2  P2  screening 0   -> TP: P2's DCIS 19 days later
 3 E3  P2  diagnostic 4A -> TP: the same DCIS 5 days later (two exams before one cancer)
 4 E4  P3  screening 3   -> FP: category 3 at screening is positive; P3 high-risk only
 5 E5  P4  screening 2   -> TN: P4's cancer is 366 days later, outside the window
 6 E6  P5  diagnostic 3  -> TN: category 3 at diagnostic is negative
 7 E7  P6  diagnostic 0  -> left out
 8 E8  P7  screening 6   -> left out
 9 modality XR           -> bad
10 date 2024-02-30       -> bad
11 assessment 7          -> bad
12 biopsy_recommended maybe -> bad
13 E13 P12 diagnostic 5  -> TP: cancer the same day (day 0)
14 E14 P13 diagnostic 4B -> FP: benign biopsy
15 E15 P14 screening 1   -> TN
16 purpose triage        -> bad
17 E17 P16 screening 0   -> FP: P16's cancer is one day *before* the exam
18 E18 P2  screening 1   -> TN: after P2's cancer
"""

EXAMS = """exam_id,patient_id,date,radiologist,modality,purpose,assessment,biopsy_recommended
E1,P1,2024-01-10,drA,MG,screening,1,no
E2,P2,2024-02-01,drA,DBT,screening,0,no
E3,P2,2024-02-15,drB,US,diagnostic,4A,yes
E4,P3,2024-03-01,drB,MG,screening,3,no
E5,P4,2024-03-05,drA,CEM,screening,2,no
E6,P5,2024-04-01,drB,MG,diagnostic,3,no
E7,P6,2024-04-02,drA,MG,diagnostic,0,no
E8,P7,2024-04-03,drB,MG,screening,6,no
E9,P8,2024-05-01,drA,XR,screening,1,no
E10,P9,2024-02-30,drA,MG,screening,1,no
E11,P10,2024-05-02,drB,MG,screening,7,no
E12,P11,2024-05-03,drA,MG,screening,1,maybe
E13,P12,2024-06-01,drB,MRI,diagnostic,5,yes
E14,P13,2024-06-02,drA,US,diagnostic,4B,yes
E15,P14,2024-06-03,drB,MG,screening,1,no
E16,P15,2024-06-04,drA,MG,triage,1,no
E17,P16,2024-07-01,drA,MG,screening,0,no
E18,P2,2024-03-01,drB,MG,screening,1,no
"""

# Outcomes (data-row number):
# 1 P1 invasive 8 mm N0 (minimal, node-negative)   2 P2 DCIS (minimal)
# 3 P4 invasive 25 mm N+                             4 P12 invasive 12 mm N0
# 5 P13 benign                                       6 P3 high-risk
# 7 P16 invasive, no biopsy (surgery)                8 bad date   9 bad cancer_type
OUTCOMES = """patient_id,date,result,cancer_type,size_mm,nodes,biopsy_performed
P1,2025-01-09,malignant,invasive,8,negative,yes
P2,2024-02-20,malignant,dcis,15,,yes
P4,2025-03-06,malignant,invasive,25,positive,yes
P12,2024-06-01,malignant,invasive,12,negative,yes
P13,2024-06-20,benign,,,,yes
P3,2024-03-20,high-risk,,,,yes
P16,2024-06-30,malignant,invasive,30,positive,no
P20,2024-13-01,benign,,,,yes
P21,2024-05-01,malignant,lobular,5,,yes
"""
