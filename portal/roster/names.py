"""Given and family names for the demo district, from many places, as a real district has."""

GIVEN_NAMES = """
Aaliyah Abdullah Adebayo Aiden Aisha Akira Alejandro Alexei Amara Amelia Ana Andrea Anika Arjun
Ava Ayesha Bao Beatriz Benjamin Bilal Camila Carlos Carmen Chen Chidi Chloe Daniel Darius David
Deepika Diego Dmitri Elena Elif Elijah Emeka Emily Emma Esperanza Ethan Farah Fatima Felipe Femi
Gabriel Grace Hana Hamza Haruto Hassan Hiroshi Ibrahim Imani Isabella Isaac Jamal Jasmine Javier
Jayden Ji-woo Jin José Juan Kai Kavya Keanu Kenji Khadija Kiara Kofi Lamar Layla Leilani Liam
Lucas Lucía Luis Maya Mei Mateo Mia Miguel Min-jun Mohammed Nadia Naomi Nia Nikhil Noah Nomvula
Oliver Omar Oluwaseun Olivia Pablo Priya Rafael Rahul Ravi Renée Rosa Ruth Sakura Samir Santiago
Sara Sebastián Seo-yeon Shira Sofia Sota Tariq Thandiwe Tomás Valentina Vikram Wei Xavier Ximena
Yara Yusuf Zainab Zara Zoë Zhi
""".split()

FAMILY_NAMES = """
Abara Adeyemi Afolabi Aguilar Ahmed Alvarez Anderson Arslan Baker Banerjee Begay Bianchi Brown
Castillo Chang Chavez Chen Cohen Costa Cruz Das Davis Diaz Dlamini Eze Fernandez Flores Fujita
Garcia Gomez Gonzalez Gupta Haddad Hall Harris Hernandez Hoang Huang Ibrahim Ito Jackson Jensen
Johnson Kaur Khan Kim Kowalski Kumar Le Lee Lewis Li Lin Liu Lopez Mahmoud Martin Martinez
Mendoza Miller Mitchell Moreno Morales Murphy Nakamura Nguyen Novak Obi Okafor Okonkwo O'Brien
Ortiz Osei Park Patel Perez Petrov Phillips Popescu Ramirez Reyes Rivera Robinson Rodriguez Rossi
Sanchez Santos Sato Schmidt Shah Silva Singh Smith Sokolov Suzuki Tanaka Taylor Thomas Thompson
Torres Tran Tsosie Vargas Vasquez Walker Wang Washington White Williams Wilson Wong Wu Yamamoto
Yang Yilmaz Young Zhang Zhou
""".split()

# Stems for school names; a large district prefixes them with North, South, ...
SCHOOL_STEMS = """
Maple Cedar Willow Oak Aspen Birch Juniper Magnolia Sequoia Redwood Cypress Laurel Hawthorn
Riverbend Lakeview Hillcrest Meadowbrook Sunnyside Brookside Fairview Highland Westwood Pinecrest
Eastgate Stonebridge Harbor Canyon Prairie Summit Valley Orchard Bayview Clearwater Foothill
Greenfield Mission Parkside Rosewood Springdale Timberline
""".split()
SCHOOL_PREFIXES = ("", "North ", "South ", "East ", "West ", "Upper ", "Lower ")
